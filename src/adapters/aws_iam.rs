//! AWS IAM: users and group memberships over the query protocol (API version
//! [`API_VERSION`], form-encoded POSTs, XML answers), signed with SigV4.
//!
//! ## Configuration
//!
//! ```toml
//! [systems.aws]
//! kind = "aws_iam"
//! credential = "keyring:aws-iam"       # ACCESS_KEY_ID:SECRET_ACCESS_KEY[:SESSION_TOKEN]
//! # base_url = "https://iam.amazonaws.com"   (the default for the region's partition)
//! [systems.aws.settings]
//! region = "us-east-1"     # picks the partition; IAM itself is global and signs for
//!                          # us-east-1 (cn-north-1 in China, us-gov-west-1 in GovCloud)
//! path = "/staff/"         # optional: create users under this path, list only this path
//! page_size = 1000         # MaxItems per listing page (1-1000; default 1000, IAM's most)
//! ```
//!
//! ## What the operations mean in IAM
//!
//! - **Accounts** are IAM users; the external id is the user name (= `spec.login`, which
//!   must match `[\w+=,.@-]{1,64}`). The HRIS id is the tag [`HRIS_TAG`]; e-mail, display
//!   name and the person's attributes are kept as `accessdesk:*` tags too (IAM users have
//!   no such fields). Users are created with their tags in one `CreateUser`, so a user
//!   never exists without its HRIS tag.
//! - **update** re-applies those tags and, when `path` is configured, moves the user there.
//!   A changed login is not applied: the user name is the id (rename it by hand).
//! - **deactivate** records the state in the tags [`DEACTIVATED_TAG`] (when) and
//!   [`DEACTIVATED_KEYS_TAG`] (which access keys it turned off), then sets every active
//!   access key Inactive, deletes the console login profile (none is fine) and removes the
//!   user from every group. The tag is written first and merged with what a previous
//!   attempt recorded, so a retried or interrupted deactivation loses nothing.
//! - **reactivate** turns back on exactly the keys deactivation recorded and removes the
//!   two tags. The console password cannot be restored (IAM cannot create a login profile
//!   without a new password): an admin sets one if the person needs the console. Group
//!   memberships come back through policy, as for any grant.
//! - `active` in listings is "not tagged as deactivated by accessdesk".
//! - Memberships are IAM groups (kind `group`; the entitlement's `external_id` — a group
//!   name or group ARN — or else its name names the group). `AddUserToGroup` is
//!   idempotent in IAM; removing a membership that is not there (`NoSuchEntity`) counts
//!   as done.
//! - Listings: `ListUsers`, `GetGroup` and `ListGroups` page with `Marker`/`IsTruncated`
//!   (the cursor is the Marker), asking for `MaxItems` 1000, the model's maximum
//!   (`maxItemsType`), unless `page_size` says less. IAM leaves tags out of list results,
//!   so each listed user is read with `GetUser` for its HRIS id and state (four at a time,
//!   within the system's rate budget).
//! - Read back (`RemoteAccount::attributes`): the synced attributes accessdesk keeps as
//!   tags, as the tags hold them (tag values lose characters IAM refuses): email
//!   (`accessdesk:email`), displayName (`accessdesk:display-name`), and department, title,
//!   costCenter, location, manager (`accessdesk:<key>`). Tags are written only for values
//!   that are not empty and never removed, so a missing tag is "not known", and left out.
//!   givenName and familyName are not kept (IAM users have no such fields).
//! - `list_entitlements` is `ListGroups` (every path): name and id are the group name.

use super::aws::{
    self, AwsProfile, CommonSettings, SigV4Auth, child, child_text, members, next_marker,
    with_result,
};
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
use serde::Deserialize;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, LazyLock};

mod provisioner;
mod reader;

/// The IAM API version this adapter speaks.
pub const API_VERSION: &str = "2010-05-08";
/// The tag that holds the person's HRIS id.
pub const HRIS_TAG: &str = "accessdesk:hris-id";
/// Set while the user is deactivated: when it happened (RFC 3339, UTC).
pub const DEACTIVATED_TAG: &str = "accessdesk:deactivated";
/// The access key ids deactivation turned off, space-separated.
pub const DEACTIVATED_KEYS_TAG: &str = "accessdesk:deactivated-keys";
const EMAIL_TAG: &str = "accessdesk:email";
const DISPLAY_TAG: &str = "accessdesk:display-name";
const TAG_PREFIX: &str = "accessdesk:";
/// `MaxItems`: the model's `maxItemsType` allows 1-1000.
pub const MAX_ITEMS: u32 = 1000;
/// `RemoteAccount::attributes` keys and the tags that hold them.
const SYNCED_TAGS: [(&str, &str); 7] = [
    ("email", EMAIL_TAG),
    ("displayName", DISPLAY_TAG),
    ("department", "accessdesk:department"),
    ("title", "accessdesk:title"),
    ("costCenter", "accessdesk:costCenter"),
    ("location", "accessdesk:location"),
    ("manager", "accessdesk:manager"),
];

/// An IAM user as a response described it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IamUser {
    pub user_name: String,
    pub user_id: String,
    pub arn: String,
    pub path: String,
    /// None when the response carried no `<Tags>` (list results never do).
    pub tags: Option<BTreeMap<String, String>>,
}

impl IamUser {
    fn to_remote(&self) -> RemoteAccount {
        let empty = BTreeMap::new();
        let tags = self.tags.as_ref().unwrap_or(&empty);
        RemoteAccount {
            external_id: self.user_name.clone(),
            login: self.user_name.clone(),
            email: tags.get(EMAIL_TAG).cloned().filter(|e| !e.is_empty()),
            active: !tags.contains_key(DEACTIVATED_TAG),
            hris_id: tags.get(HRIS_TAG).cloned().filter(|h| !h.is_empty()),
            attributes: SYNCED_TAGS
                .iter()
                .filter_map(|(key, tag)| Some((key.to_string(), tags.get(*tag)?.clone())))
                .collect(),
        }
    }
}

/// `ListGroups`: group names and the next Marker.
pub fn parse_group_list_page(system: &str, status: u16, body: &[u8]) -> AResult<Page<String>> {
    parse_group_names(system, "ListGroups", status, body)
}

/// `ListGroupsForUser`: group names and the next Marker.
pub fn parse_groups_page(system: &str, status: u16, body: &[u8]) -> AResult<Page<String>> {
    parse_group_names(system, "ListGroupsForUser", status, body)
}

/// `<Groups>` of an action's result (group names) and the next Marker.
fn parse_group_names(
    system: &str,
    action: &str,
    status: u16,
    body: &[u8],
) -> AResult<Page<String>> {
    with_result(system, action, status, body, |r| {
        child(r, "Groups")?;
        let items = members(r, "Groups")
            .into_iter()
            .map(|m| child_text(m, "GroupName").filter(|s| !s.is_empty()))
            .collect::<Option<Vec<_>>>()?;
        Some(Page {
            items,
            next: next_marker(r)?,
        })
    })
}

/// Read a `<User>` (or `<member>` of `<Users>`) element.
pub fn parse_user(n: roxmltree::Node<'_, '_>) -> Option<IamUser> {
    let tags = child(n, "Tags").map(|_| {
        members(n, "Tags")
            .into_iter()
            .filter_map(|m| {
                Some((
                    child_text(m, "Key")?,
                    child_text(m, "Value").unwrap_or_default(),
                ))
            })
            .collect()
    });
    Some(IamUser {
        user_name: child_text(n, "UserName").filter(|s| !s.is_empty())?,
        user_id: child_text(n, "UserId").unwrap_or_default(),
        arn: child_text(n, "Arn").unwrap_or_default(),
        path: child_text(n, "Path").unwrap_or_else(|| "/".into()),
        tags,
    })
}

/// `<{action}Result><User>` (GetUser, CreateUser).
pub fn parse_user_result(system: &str, action: &str, status: u16, body: &[u8]) -> AResult<IamUser> {
    with_result(system, action, status, body, |r| {
        parse_user(child(r, "User")?)
    })
}

/// A page of users (`ListUsers` → `Users`, `GetGroup` → `Users`) and the next Marker.
pub fn parse_user_page(
    system: &str,
    action: &str,
    status: u16,
    body: &[u8],
) -> AResult<(Vec<IamUser>, Option<String>)> {
    with_result(system, action, status, body, |r| {
        child(r, "Users")?;
        let users = members(r, "Users")
            .into_iter()
            .map(parse_user)
            .collect::<Option<Vec<_>>>()?;
        Some((users, next_marker(r)?))
    })
}

/// `ListAccessKeys`: (key id, status) pairs and the next Marker.
pub fn parse_keys_page(system: &str, status: u16, body: &[u8]) -> AResult<Page<(String, String)>> {
    with_result(system, "ListAccessKeys", status, body, |r| {
        child(r, "AccessKeyMetadata")?;
        let items = members(r, "AccessKeyMetadata")
            .into_iter()
            .map(|m| {
                Some((
                    child_text(m, "AccessKeyId").filter(|s| !s.is_empty())?,
                    child_text(m, "Status").unwrap_or_default(),
                ))
            })
            .collect::<Option<Vec<_>>>()?;
        Some(Page {
            items,
            next: next_marker(r)?,
        })
    })
}

/// IAM user names: 1-64 of `[\w+=,.@-]` (`\w` is ASCII here).
pub fn valid_user_name(s: &str) -> bool {
    valid_iam_name(s, 64)
}

/// IAM group names: 1-128 of `[\w+=,.@-]`.
pub fn valid_group_name(s: &str) -> bool {
    valid_iam_name(s, 128)
}

fn valid_iam_name(s: &str, max: usize) -> bool {
    !s.is_empty()
        && s.len() <= max
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_+=,.@-".contains(&b))
}

static TAG_CHAR: LazyLock<regex::Regex> =
    LazyLock::new(|| regex::Regex::new(r"^[\p{L}\p{Z}\p{N}_.:/=+\-@]$").expect("static regex"));

fn tag_char_ok(c: char) -> bool {
    let mut buf = [0u8; 4];
    TAG_CHAR.is_match(c.encode_utf8(&mut buf))
}

/// A tag value IAM accepts: up to 256 of `[\p{L}\p{Z}\p{N}_.:/=+\-@]`.
pub fn valid_tag_value(s: &str) -> bool {
    s.chars().count() <= 256 && s.chars().all(tag_char_ok)
}

/// Make free text a valid tag value: drop characters IAM refuses, cut to 256 characters.
pub fn tag_value(s: &str) -> String {
    s.chars()
        .filter(|c| tag_char_ok(*c))
        .take(256)
        .collect::<String>()
        .trim()
        .to_string()
}

/// The tags that describe a person on their IAM user.
pub fn spec_tags(system: &str, spec: &AccountSpec) -> AResult<Vec<(String, String)>> {
    let mut tags = Vec::new();
    if !spec.hris_id.is_empty() {
        if !valid_tag_value(&spec.hris_id) {
            return Err(AdapterError::new(
                ErrorClass::Permanent,
                system,
                format!(
                    "HRIS id {:?} cannot be stored as an IAM tag value (allowed: letters, digits, \
                     spaces and _.:/=+-@, at most 256)",
                    spec.hris_id
                ),
            ));
        }
        tags.push((HRIS_TAG.to_string(), spec.hris_id.clone()));
    }
    for (key, value) in [(EMAIL_TAG, &spec.email), (DISPLAY_TAG, &spec.display_name)] {
        let v = tag_value(value);
        if !v.is_empty() {
            tags.push((key.to_string(), v));
        }
    }
    for (k, v) in &spec.attributes {
        let key = format!("{TAG_PREFIX}{}", tag_value(k));
        let v = tag_value(v);
        if key.len() > TAG_PREFIX.len() && key.chars().count() <= 128 && !v.is_empty() {
            tags.push((key, v));
        }
    }
    Ok(tags)
}

fn tag_params(tags: &[(String, String)]) -> Vec<(String, String)> {
    let mut p = Vec::new();
    for (i, (k, v)) in tags.iter().enumerate() {
        p.push((format!("Tags.member.{}.Key", i + 1), k.clone()));
        p.push((format!("Tags.member.{}.Value", i + 1), v.clone()));
    }
    p
}

/// The group name in a catalogue `external_id`: the name itself, or the last segment of a
/// group ARN (`arn:aws:iam::123456789012:group/division/eng` → `eng`).
pub fn group_name_from_id(id: &str) -> &str {
    match id.strip_prefix("arn:") {
        Some(rest) if rest.contains(":group/") => id.rsplit('/').next().unwrap_or(id),
        _ => id,
    }
}

/// The IAM endpoint and signing region for a region's partition.
pub fn partition_endpoint(region: &str) -> (&'static str, &'static str) {
    if region.starts_with("cn-") {
        ("https://iam.cn-north-1.amazonaws.com.cn", "cn-north-1")
    } else if region.starts_with("us-gov-") {
        ("https://iam.us-gov.amazonaws.com", "us-gov-west-1")
    } else {
        ("https://iam.amazonaws.com", "us-east-1")
    }
}

/// IAM users carry the HR id as a tag; no suspend (deactivation removes sign-in); users are
/// not deleted.
const CAPABILITIES: Capabilities = Capabilities {
    suspend: false,
    delete: false,
    list_entitlements: true,
    stores_hris_id: true,
};

pub struct AwsIam {
    about: About,
    http: HttpClient,
    sts: HttpClient,
    settings: CommonSettings,
    /// Where users are created and listed (None: "/" and all paths).
    path: Option<String>,
    page_size: u32,
}

pub fn from_config(ctx: AdapterContext<'_>) -> crate::Result<Arc<dyn Adapter>> {
    Ok(Arc::new(AwsIam::from_context(ctx)?))
}

/// `[systems.NAME.settings]` of an `aws_iam` system.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IamSettings {
    /// Picks the partition (default us-east-1); IAM itself is global.
    pub region: Option<String>,
    /// Create users under this path, and list only this path.
    pub path: Option<String>,
    /// MaxItems per listing page, 1 to 1000 (default 1000, IAM's most).
    #[serde(default, deserialize_with = "settings::optional_in::<_, 1, MAX_ITEMS>")]
    pub page_size: Option<u32>,
}

impl AwsIam {
    pub fn from_context(ctx: AdapterContext<'_>) -> crate::Result<Self> {
        let name = ctx.entry.system.name.clone();
        let usage =
            |m: String, hint: &str| crate::Error::usage(format!("system {name}: {m}"), hint);
        ctx.require_api_version(API_VERSION, "IAM")?;
        let set: IamSettings = settings::parse(ctx.entry)?;
        let (settings, creds, source) = aws::common_settings(&ctx, set.region)?;
        let path = set.path;
        if let Some(p) = &path {
            let ok = p == "/"
                || (p.starts_with('/')
                    && p.ends_with('/')
                    && p.len() <= 512
                    && p.bytes().all(|b| (0x21..=0x7e).contains(&b)));
            if !ok {
                return Err(usage(
                    format!("settings.path {p:?} is not an IAM path"),
                    "an IAM path starts and ends with '/', e.g. \"/staff/\"",
                ));
            }
        }
        let page_size = set.page_size.unwrap_or(MAX_ITEMS);
        let (default_endpoint, signing_region) = partition_endpoint(&settings.region);
        let base = settings
            .base_url
            .clone()
            .unwrap_or_else(|| default_endpoint.to_string());
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
        let mut http = HttpClient::new(
            &name,
            &base,
            ctx.timeouts,
            ctx.limiter.clone(),
            Arc::new(SigV4Auth::new("iam", signing_region, &creds, &source)),
            profile("an IAM XML response"),
        )
        .map_err(to_usage)?;
        http.retry = aws::default_retry();
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
        Ok(AwsIam {
            about: About::of(&http, API_VERSION, CAPABILITIES),
            http,
            sts,
            settings,
            path,
            page_size,
        })
    }

    /// Replace the retry policy (tests use short ones).
    pub fn set_retry(&mut self, retry: RetryPolicy) {
        self.http.retry = retry;
        self.sts.retry = retry;
    }

    pub fn http(&self) -> &HttpClient {
        &self.http
    }

    fn system_name(&self) -> &str {
        self.http.system()
    }

    /// One signed query-protocol call. 2xx bodies are returned unparsed.
    pub async fn call(&self, action: &str, params: &[(&str, &str)]) -> AResult<HttpResponse> {
        self.http
            .send(Req::post("/").form(aws::query(action, API_VERSION, params)))
            .await
    }

    async fn call_owned(
        &self,
        action: &str,
        params: Vec<(String, String)>,
    ) -> AResult<HttpResponse> {
        let mut form = aws::query(action, API_VERSION, &[]);
        form.extend(params);
        self.http.send(Req::post("/").form(form)).await
    }

    /// An action with no result: the 2xx body must still be that action's response.
    async fn call_empty(&self, action: &str, params: &[(&str, &str)]) -> AResult<()> {
        let r = self.call(action, params).await?;
        with_result(self.system_name(), action, r.status, &r.body, |_| Some(()))
    }

    /// `GetUser`; `None` name means the caller. NoSuchEntity is `Ok(None)`.
    pub async fn get_user(&self, name: Option<&str>) -> AResult<Option<IamUser>> {
        let params: Vec<(&str, &str)> = name.map(|n| vec![("UserName", n)]).unwrap_or_default();
        match self.call("GetUser", &params).await {
            Ok(r) => parse_user_result(self.system_name(), "GetUser", r.status, &r.body).map(Some),
            Err(e) if e.class == ErrorClass::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn require_user(&self, name: &str) -> AResult<IamUser> {
        self.get_user(Some(name)).await?.ok_or_else(|| {
            AdapterError::new(
                ErrorClass::NotFound,
                self.system_name(),
                format!("IAM user {name:?} does not exist"),
            )
        })
    }

    async fn tag_user(&self, user: &str, tags: &[(String, String)]) -> AResult<()> {
        if tags.is_empty() {
            return Ok(());
        }
        let mut p = vec![("UserName".to_string(), user.to_string())];
        p.extend(tag_params(tags));
        let r = self.call_owned("TagUser", p).await?;
        with_result(self.system_name(), "TagUser", r.status, &r.body, |_| {
            Some(())
        })
    }

    /// Every group the user is in.
    pub async fn groups_of(&self, user: &str) -> AResult<Vec<String>> {
        let page_size = self.page_size.to_string();
        collect_all(
            |cursor: Option<String>| {
                let page_size = page_size.clone();
                async move {
                    let mut p = vec![("UserName", user), ("MaxItems", page_size.as_str())];
                    if let Some(m) = cursor.as_deref() {
                        p.push(("Marker", m));
                    }
                    let r = self.call("ListGroupsForUser", &p).await?;
                    parse_groups_page(self.system_name(), r.status, &r.body)
                }
            },
            0,
        )
        .await
    }

    /// Every access key of the user: (id, status).
    pub async fn access_keys(&self, user: &str) -> AResult<Vec<(String, String)>> {
        collect_all(
            |cursor: Option<String>| async move {
                let mut p = vec![("UserName", user)];
                if let Some(m) = cursor.as_deref() {
                    p.push(("Marker", m));
                }
                let r = self.call("ListAccessKeys", &p).await?;
                parse_keys_page(self.system_name(), r.status, &r.body)
            },
            0,
        )
        .await
    }

    /// Turn listed users into accounts, reading tags with GetUser where the listing had none.
    async fn enrich(&self, users: Vec<IamUser>) -> AResult<Vec<RemoteAccount>> {
        let results: Vec<AResult<Option<RemoteAccount>>> = futures::stream::iter(users)
            .map(|u| async move {
                if u.tags.is_some() {
                    return Ok(Some(u.to_remote()));
                }
                // A user deleted between the listing and this read is simply gone.
                Ok(self
                    .get_user(Some(&u.user_name))
                    .await?
                    .map(|full| full.to_remote()))
            })
            .buffered(4)
            .collect()
            .await;
        let mut out = Vec::with_capacity(results.len());
        for r in results {
            if let Some(a) = r? {
                out.push(a);
            }
        }
        Ok(out)
    }

    fn group_name<'t>(&self, target: &'t EntitlementTarget) -> AResult<&'t str> {
        if target.kind != EntitlementKind::Group {
            return Err(AdapterError::unsupported(
                self.system_name(),
                &format!(
                    "entitlement kind {} (IAM memberships are groups)",
                    target.kind.as_str()
                ),
            ));
        }
        let g = if target.external_id.is_empty() {
            target.name.as_str()
        } else {
            group_name_from_id(&target.external_id)
        };
        if !valid_group_name(g) {
            return Err(AdapterError::new(
                ErrorClass::Permanent,
                self.system_name(),
                format!("{g:?} is not a valid IAM group name ([\\w+=,.@-], 1-128 characters)"),
            ));
        }
        Ok(g)
    }

    fn check_user_name(&self, name: &str) -> AResult<()> {
        if valid_user_name(name) {
            Ok(())
        } else {
            Err(AdapterError::new(
                ErrorClass::Permanent,
                self.system_name(),
                format!(
                    "{name:?} is not a valid IAM user name (1-64 of letters, digits and _+=,.@-)"
                ),
            ))
        }
    }
}

#[cfg(test)]
mod tests;
