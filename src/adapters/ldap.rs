//! The LDAP / Active Directory adapter (the `ldap3` crate): inetOrgPerson accounts under
//! `users_ou`, groupOfNames (or groupOfUniqueNames) groups under `groups_ou`.
//!
//! What accessdesk's operations mean here:
//! - **create**: add `uid=LOGIN,users_ou` (inetOrgPerson: `cn`, `sn`, `givenName`, `mail`,
//!   the HR id in `hris_attribute` (default `employeeNumber`), `departmentNumber`,
//!   `title`, `l`). "Entry already exists" (68) is Conflict: the engine reads the entry
//!   back and adopts it only with proof (the HR id on it).
//! - **update**: replace those attributes (the login, the entry's RDN, never changes).
//! - **deactivate** (`deactivate` in settings): `attribute` sets `disable_attribute` to
//!   `disable_value` (default `employeeType: disabled`); `disabled_ou` moves the entry to
//!   `disabled_ou`; `ad_uac` sets Active Directory's ACCOUNTDISABLE bit (2) in
//!   `userAccountControl`. **reactivate** undoes it.
//! - **grant / revoke**: add or delete the user's DN in the group's `member` (or
//!   `uniqueMember`). A groupOfNames must keep one member: removing the last one puts
//!   `placeholder` in its place, and adding the first real one takes it out again.
//!   "Value exists" (20) and "no such attribute" (16) are done.
//! - **observe**: paged-results searches (RFC 2696) of the users and groups; a group's
//!   members are the users whose `memberOf` names it (the memberOf overlay, or AD).
//!
//! Accounts are identified by `entryUUID` (AD: `objectGUID`), which survives moves.
//!
//! Auth: a simple bind as `bind_dn` with the password from the keychain, over StartTLS
//! (`security = "starttls"`, the default) or LDAPS (an `ldaps://` base_url); plain LDAP
//! (`security = "none"`) is refused except on a loopback address.

use super::error::{AdapterError, Edit, ErrorClass, already_done};
use super::http::RateLimiter;
use super::kit::context::AdapterContext;
use super::kit::errors::{Class, ErrorRule, classify_by, code};
use super::kit::settings::{self, optional_in};
use super::{
    AResult, About, AccountSpec, Adapter, Capabilities, EntitlementTarget, Identity, Page,
    Provisioner, Reader, RemoteAccount, RemoteEntitlement, RemoteMembership,
};
use crate::model::EntitlementKind;
use crate::secrets::Secret;
use crate::{Error, Result};
use async_trait::async_trait;
use ldap3::controls::{ControlType, PagedResults};
use ldap3::{Ldap, LdapConnAsync, LdapConnSettings, LdapError, Mod, Scope, SearchEntry};
use serde::Deserialize;
use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

pub const API_VERSION: &str = "v3";

/// How a leaver's account is deactivated.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Deactivate {
    #[default]
    Attribute,
    DisabledOu,
    AdUac,
}

/// `[systems.NAME.settings]` of an `ldap` system.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LdapSettings {
    /// The DN accessdesk binds as; its password is the system's credential.
    pub bind_dn: String,
    /// Where accounts live, e.g. `ou=people,dc=example,dc=com`.
    pub users_ou: String,
    /// Where groups live, e.g. `ou=groups,dc=example,dc=com`.
    pub groups_ou: String,
    /// `starttls` (default), `ldaps` (implied by an ldaps:// base_url) or `none`
    /// (loopback only).
    #[serde(default)]
    pub security: Option<String>,
    /// `groupOfNames` (default, `member`) or `groupOfUniqueNames` (`uniqueMember`).
    #[serde(default)]
    pub group_class: Option<String>,
    /// The member that keeps an emptied groupOfNames valid.
    #[serde(default)]
    pub placeholder: Option<String>,
    #[serde(default)]
    pub hris_attribute: Option<String>,
    #[serde(default)]
    pub deactivate: Deactivate,
    #[serde(default)]
    pub disabled_ou: Option<String>,
    #[serde(default)]
    pub disable_attribute: Option<String>,
    #[serde(default)]
    pub disable_value: Option<String>,
    /// Paged-results page size (1-1000, default 500).
    #[serde(default, deserialize_with = "optional_in::<_, 1, 1000>")]
    pub page_size: Option<u32>,
}

/// LDAP result codes (RFC 4511 §4.1.9) as classes.
const LDAP_ERRORS: &[ErrorRule] = &[
    code("16", Class::NotFound),     // noSuchAttribute: not a member
    code("20", Class::Conflict),     // attributeOrValueExists: already a member
    code("32", Class::NotFound),     // noSuchObject
    code("68", Class::Conflict),     // entryAlreadyExists
    code("49", Class::Unauthorized), // invalidCredentials
    code("48", Class::Unauthorized), // inappropriateAuthentication
    code("3", Class::Transient),     // timeLimitExceeded
    code("51", Class::Transient),    // busy
    code("52", Class::Transient),    // unavailable
];

pub struct LdapAdapter {
    about: About,
    url: String,
    set: LdapSettings,
    password: Secret,
    source: String,
    tls: bool,
    limiter: Arc<RateLimiter>,
    /// How long one operation (the bind included) may take before the connection is
    /// given up (the request timeout).
    op_timeout: std::time::Duration,
    conn: tokio::sync::Mutex<Option<Ldap>>,
}

impl std::fmt::Debug for LdapAdapter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LdapAdapter")
            .field("url", &self.url)
            .field("bind_dn", &self.set.bind_dn)
            .field("password", &"[redacted]")
            .finish()
    }
}

pub fn from_config(ctx: AdapterContext<'_>) -> Result<Arc<dyn Adapter>> {
    Ok(Arc::new(LdapAdapter::from_context(ctx)?))
}

fn first(e: &SearchEntry, attr: &str) -> Option<String> {
    e.attrs.get(attr).and_then(|v| v.first()).cloned()
}

fn set(v: &str) -> HashSet<&str> {
    if v.is_empty() {
        HashSet::new()
    } else {
        HashSet::from([v])
    }
}

impl LdapAdapter {
    pub fn from_context(ctx: AdapterContext<'_>) -> Result<Self> {
        let name = ctx.entry.system.name.clone();
        let usage = |msg: String, hint: &str| Error::usage(format!("system {name}: {msg}"), hint);
        ctx.require_api_version(API_VERSION, "LDAP")?;
        let set: LdapSettings = settings::parse(ctx.entry)?;
        let url = ctx.base_url()?.to_string();
        let parsed = url::Url::parse(&url).map_err(|e| {
            usage(
                format!("base_url {url:?} is not an LDAP URL: {e}"),
                "ldap://host:389 or ldaps://host:636",
            )
        })?;
        let loopback = parsed.host_str().is_some_and(|h| {
            h == "localhost" || h.parse::<std::net::IpAddr>().is_ok_and(|a| a.is_loopback())
        });
        let tls = match (parsed.scheme(), set.security.as_deref()) {
            ("ldaps", _) => false,
            ("ldap", None | Some("starttls")) => true,
            ("ldap", Some("none")) if loopback => false,
            ("ldap", Some("none")) => {
                return Err(usage(
                    "security = \"none\" sends the bind password in clear; it is allowed on loopback only".into(),
                    "use security = \"starttls\" or an ldaps:// base_url",
                ));
            }
            (s, sec) => {
                return Err(usage(
                    format!("scheme {s:?} with security {sec:?} is not supported"),
                    "ldap:// with security = \"starttls\", or ldaps://",
                ));
            }
        };
        if set.deactivate == Deactivate::DisabledOu && set.disabled_ou.is_none() {
            return Err(usage(
                "deactivate = \"disabled_ou\" needs disabled_ou".into(),
                "disabled_ou = \"ou=disabled,dc=example,dc=com\"",
            ));
        }
        let source = ctx.credential()?.to_string();
        let password = ctx.secret()?;
        let caps = Capabilities {
            suspend: false,
            delete: false,
            list_entitlements: true,
            stores_hris_id: true,
        };
        Ok(LdapAdapter {
            about: About {
                system: name,
                api_version: API_VERSION,
                limiter: Some(ctx.limiter.clone()),
                capabilities: caps,
                watch: None,
                needed_scopes: Vec::new(),
            },
            url,
            set,
            password,
            source,
            tls,
            limiter: ctx.limiter,
            op_timeout: ctx.timeouts.request,
            conn: tokio::sync::Mutex::new(None),
        })
    }

    fn err(&self, e: LdapError, what: &str) -> AdapterError {
        let system = &self.about.system;
        match e {
            LdapError::LdapResult { result } => {
                let rc = result.rc.to_string();
                // Codes the table does not name are permanent (status 0: no HTTP here).
                let class = classify_by(LDAP_ERRORS, 0, Some(&rc)).with_wait(None);
                let mut msg = format!("{what}: LDAP result {rc} {}", result.text);
                if class == ErrorClass::Unauthorized {
                    msg = format!(
                        "{system} rejected the bind as {} with the password from {}: {msg}",
                        self.set.bind_dn, self.source
                    );
                }
                AdapterError::new(class, system, msg).with_code(rc)
            }
            other => AdapterError::new(ErrorClass::Transient, system, format!("{what}: {other}")),
        }
    }

    /// The bound connection, made (and bound) on first use and after a failure.
    async fn ldap(&self) -> AResult<Ldap> {
        let mut guard = self.conn.lock().await;
        if let Some(l) = guard.as_mut()
            && !l.is_closed()
        {
            return Ok(l.clone());
        }
        let settings = LdapConnSettings::new()
            .set_conn_timeout(self.op_timeout)
            .set_starttls(self.tls);
        let (conn, mut ldap) = LdapConnAsync::with_settings(settings, &self.url)
            .await
            .map_err(|e| self.err(e, "connecting"))?;
        ldap3::drive!(conn);
        ldap.with_timeout(self.op_timeout)
            .simple_bind(&self.set.bind_dn, self.password.expose())
            .await
            .and_then(|r| r.success())
            .map_err(|e| self.err(e, "binding"))?;
        *guard = Some(ldap.clone());
        Ok(ldap)
    }

    /// Run one operation under the limiter; a broken connection is dropped for the next.
    async fn op<T, F, Fut>(&self, what: &str, f: F) -> AResult<T>
    where
        F: FnOnce(Ldap) -> Fut,
        Fut: std::future::Future<Output = std::result::Result<T, LdapError>>,
    {
        let _permit = self.limiter.acquire().await;
        let mut ldap = self.ldap().await?;
        ldap.with_timeout(self.op_timeout);
        match f(ldap).await {
            Ok(t) => Ok(t),
            Err(e) => {
                if !matches!(e, LdapError::LdapResult { .. }) {
                    *self.conn.lock().await = None;
                }
                Err(self.err(e, what))
            }
        }
    }

    fn member_attr(&self) -> &'static str {
        match self.set.group_class.as_deref() {
            Some("groupOfUniqueNames") => "uniqueMember",
            _ => "member",
        }
    }

    fn hris_attr(&self) -> &str {
        self.set
            .hris_attribute
            .as_deref()
            .unwrap_or("employeeNumber")
    }

    fn placeholder(&self) -> String {
        let suffix = self
            .set
            .users_ou
            .split_once(',')
            .map(|(_, s)| s)
            .unwrap_or(&self.set.users_ou);
        self.set
            .placeholder
            .clone()
            .unwrap_or_else(|| format!("cn=placeholder,{suffix}"))
    }

    fn user_dn(&self, login: &str) -> String {
        format!("uid={},{}", ldap3::dn_escape(login), self.set.users_ou)
    }

    fn group_dn(&self, t: &EntitlementTarget) -> String {
        if t.external_id.contains('=') {
            return t.external_id.clone();
        }
        format!(
            "cn={},{}",
            ldap3::dn_escape(t.name.as_str()),
            self.set.groups_ou
        )
    }

    fn attrs(&self) -> Vec<String> {
        let mut a: Vec<String> = [
            "uid",
            "cn",
            "sn",
            "givenName",
            "mail",
            "departmentNumber",
            "title",
            "l",
            "memberOf",
            "entryUUID",
            "userAccountControl",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        a.push(self.hris_attr().to_string());
        a.extend(self.set.disable_attribute.clone());
        if self.set.deactivate == Deactivate::Attribute && self.set.disable_attribute.is_none() {
            a.push("employeeType".into());
        }
        a
    }

    fn disabled(&self, e: &SearchEntry) -> bool {
        match self.set.deactivate {
            Deactivate::Attribute => {
                let attr = self
                    .set
                    .disable_attribute
                    .as_deref()
                    .unwrap_or("employeeType");
                let value = self.set.disable_value.as_deref().unwrap_or("disabled");
                e.attrs
                    .get(attr)
                    .is_some_and(|v| v.iter().any(|x| x == value))
            }
            Deactivate::DisabledOu => self
                .set
                .disabled_ou
                .as_deref()
                .is_some_and(|ou| e.dn.to_lowercase().ends_with(&ou.to_lowercase())),
            Deactivate::AdUac => first(e, "userAccountControl")
                .and_then(|v| v.parse::<u32>().ok())
                .is_some_and(|v| v & 2 != 0),
        }
    }

    fn account(&self, e: &SearchEntry) -> RemoteAccount {
        let mail = first(e, "mail");
        let mut attributes = BTreeMap::new();
        for (key, attr) in [
            ("email", "mail"),
            ("givenName", "givenName"),
            ("familyName", "sn"),
            ("displayName", "cn"),
            ("department", "departmentNumber"),
            ("title", "title"),
            ("location", "l"),
        ] {
            attributes.insert(key.to_string(), first(e, attr).unwrap_or_default());
        }
        RemoteAccount {
            external_id: first(e, "entryUUID").unwrap_or_else(|| e.dn.clone()),
            login: first(e, "uid").unwrap_or_default(),
            email: mail,
            active: !self.disabled(e),
            hris_id: first(e, self.hris_attr()),
            attributes,
        }
    }

    /// One entry by filter under `base`, or None.
    async fn find(&self, base: &str, filter: &str) -> AResult<Option<SearchEntry>> {
        let attrs = self.attrs();
        let found = self
            .op("searching", |mut l| async move {
                l.search(base, Scope::Subtree, filter, attrs)
                    .await?
                    .success()
            })
            .await;
        match found {
            Ok((entries, _)) => Ok(entries.into_iter().next().map(SearchEntry::construct)),
            Err(e) if e.class == ErrorClass::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn entry_of(&self, external_id: &str) -> AResult<Option<SearchEntry>> {
        let base = self.search_base();
        let filter = format!("(entryUUID={})", ldap3::ldap_escape(external_id));
        self.find(&base, &filter).await
    }

    /// Where accounts are searched: the users OU's parent, so that disabled_ou is covered.
    fn search_base(&self) -> String {
        match self.set.deactivate {
            Deactivate::DisabledOu => self
                .set
                .users_ou
                .split_once(',')
                .map(|(_, s)| s.to_string())
                .unwrap_or_else(|| self.set.users_ou.clone()),
            _ => self.set.users_ou.clone(),
        }
    }

    async fn require(&self, external_id: &str) -> AResult<SearchEntry> {
        self.entry_of(external_id).await?.ok_or_else(|| {
            AdapterError::new(
                ErrorClass::NotFound,
                &self.about.system,
                format!("no LDAP entry with entryUUID {external_id}"),
            )
        })
    }

    /// One page of a paged-results search (RFC 2696); the cursor is the cookie in hex.
    async fn paged(
        &self,
        base: &str,
        filter: &str,
        attrs: Vec<String>,
        cursor: Option<String>,
    ) -> AResult<(Vec<SearchEntry>, Option<String>)> {
        let cookie = match cursor.as_deref() {
            None => Vec::new(),
            Some(c) => hex::decode(c).map_err(|_| {
                AdapterError::new(
                    ErrorClass::Permanent,
                    &self.about.system,
                    "not a paging cursor this adapter made",
                )
            })?,
        };
        let size = self.set.page_size.unwrap_or(500) as i32;
        let (entries, result) = self
            .op("searching (paged)", |mut l| async move {
                l.with_controls(PagedResults { size, cookie })
                    .search(base, Scope::Subtree, filter, attrs)
                    .await?
                    .success()
            })
            .await?;
        let next = result
            .ctrls
            .iter()
            .find(|c| matches!(c.0, Some(ControlType::PagedResults)) && c.1.val.is_some())
            .map(|c| c.1.parse::<PagedResults>().cookie)
            .filter(|c| !c.is_empty())
            .map(hex::encode);
        Ok((
            entries.into_iter().map(SearchEntry::construct).collect(),
            next,
        ))
    }

    async fn modify(&self, dn: &str, mods: Vec<Mod<&str>>, what: &str) -> AResult<()> {
        self.op(what, |mut l| async move {
            l.modify(dn, mods).await?.success().map(|_| ())
        })
        .await
    }

    async fn set_disabled(&self, external_id: &str, disabled: bool) -> AResult<()> {
        let e = self.require(external_id).await?;
        match self.set.deactivate {
            Deactivate::Attribute => {
                let attr = self
                    .set
                    .disable_attribute
                    .clone()
                    .unwrap_or_else(|| "employeeType".into());
                let value = self
                    .set
                    .disable_value
                    .clone()
                    .unwrap_or_else(|| "disabled".into());
                let m = if disabled {
                    Mod::Add(attr.as_str(), set(&value))
                } else {
                    Mod::Delete(attr.as_str(), set(&value))
                };
                let r = self
                    .modify(&e.dn, vec![m], "setting the disable attribute")
                    .await;
                // Already so: the value exists (20) or is absent (16).
                already_done(if disabled { Edit::Grant } else { Edit::Revoke }, r)
            }
            Deactivate::AdUac => {
                let uac = first(&e, "userAccountControl")
                    .and_then(|v| v.parse::<u32>().ok())
                    .unwrap_or(512);
                let new = if disabled { uac | 2 } else { uac & !2 };
                let v = new.to_string();
                self.modify(
                    &e.dn,
                    vec![Mod::Replace("userAccountControl", set(&v))],
                    "setting userAccountControl",
                )
                .await
            }
            Deactivate::DisabledOu => {
                let ou = self.set.disabled_ou.clone().unwrap_or_default();
                let target = if disabled {
                    ou
                } else {
                    self.set.users_ou.clone()
                };
                if e.dn.to_lowercase().ends_with(&target.to_lowercase()) {
                    return Ok(());
                }
                let rdn = e.dn.split(',').next().unwrap_or_default().to_string();
                let dn = e.dn.clone();
                self.op("moving the entry", |mut l| async move {
                    l.modifydn(&dn, &rdn, true, Some(&target))
                        .await?
                        .success()
                        .map(|_| ())
                })
                .await
            }
        }
    }
}

#[async_trait]
impl Reader for LdapAdapter {
    fn about(&self) -> &About {
        &self.about
    }

    async fn authenticate(&self) -> AResult<Identity> {
        *self.conn.lock().await = None;
        self.ldap().await?;
        let mut details = BTreeMap::new();
        details.insert("url".into(), self.url.clone());
        details.insert(
            "tls".into(),
            if self.tls {
                "starttls"
            } else if self.url.starts_with("ldaps") {
                "ldaps"
            } else {
                "none (loopback)"
            }
            .into(),
        );
        details.insert("credential".into(), self.source.clone());
        Ok(Identity {
            principal: self.set.bind_dn.clone(),
            scopes: Vec::new(),
            details,
        })
    }

    async fn get_account_by_login(&self, login: &str) -> AResult<Option<RemoteAccount>> {
        let filter = format!(
            "(&(objectClass=inetOrgPerson)(uid={}))",
            ldap3::ldap_escape(login)
        );
        Ok(self
            .find(&self.search_base(), &filter)
            .await?
            .map(|e| self.account(&e)))
    }

    async fn get_account(&self, external_id: &str) -> AResult<Option<RemoteAccount>> {
        Ok(self.entry_of(external_id).await?.map(|e| self.account(&e)))
    }

    async fn list_memberships(&self, account_id: &str) -> AResult<Vec<RemoteMembership>> {
        let Some(e) = self.entry_of(account_id).await? else {
            return Ok(Vec::new());
        };
        Ok(e.attrs
            .get("memberOf")
            .into_iter()
            .flatten()
            .map(|dn| RemoteMembership {
                kind: EntitlementKind::Group,
                name: dn
                    .split(',')
                    .next()
                    .and_then(|r| r.split_once('='))
                    .map(|(_, v)| v.to_string())
                    .unwrap_or_default(),
                external_id: dn.clone(),
            })
            .collect())
    }

    async fn list_accounts(&self, cursor: Option<String>) -> AResult<Page<RemoteAccount>> {
        let (entries, next) = self
            .paged(
                &self.search_base(),
                "(objectClass=inetOrgPerson)",
                self.attrs(),
                cursor,
            )
            .await?;
        Ok(Page {
            items: entries.iter().map(|e| self.account(e)).collect(),
            next,
        })
    }

    /// The users whose `memberOf` names the group (the memberOf overlay keeps it).
    async fn list_members(
        &self,
        target: &EntitlementTarget,
        cursor: Option<String>,
    ) -> AResult<Page<RemoteAccount>> {
        let filter = format!(
            "(&(objectClass=inetOrgPerson)(memberOf={}))",
            ldap3::ldap_escape(self.group_dn(target))
        );
        let (entries, next) = self
            .paged(&self.search_base(), &filter, self.attrs(), cursor)
            .await?;
        Ok(Page {
            items: entries.iter().map(|e| self.account(e)).collect(),
            next,
        })
    }

    async fn list_entitlements(&self, cursor: Option<String>) -> AResult<Page<RemoteEntitlement>> {
        let class = self
            .set
            .group_class
            .clone()
            .unwrap_or_else(|| "groupOfNames".into());
        let filter = format!("(objectClass={class})");
        let (entries, next) = self
            .paged(&self.set.groups_ou, &filter, vec!["cn".to_string()], cursor)
            .await?;
        Ok(Page {
            items: entries
                .iter()
                .map(|e| RemoteEntitlement {
                    kind: EntitlementKind::Group,
                    name: first(e, "cn").unwrap_or_default(),
                    external_id: e.dn.clone(),
                })
                .collect(),
            next,
        })
    }
}

#[async_trait]
impl Provisioner for LdapAdapter {
    async fn create_account(&self, spec: &AccountSpec) -> AResult<RemoteAccount> {
        let dn = self.user_dn(&spec.login);
        let a = |k: &str| spec.attributes.get(k).cloned().unwrap_or_default();
        let (dept, title, loc) = (a("department"), a("title"), a("location"));
        let mut attrs: Vec<(&str, HashSet<&str>)> = vec![
            (
                "objectClass",
                HashSet::from(["inetOrgPerson", "organizationalPerson", "person", "top"]),
            ),
            ("uid", set(&spec.login)),
            ("cn", set(&spec.display_name)),
            (
                "sn",
                set(if spec.family_name.is_empty() {
                    &spec.login
                } else {
                    &spec.family_name
                }),
            ),
            (self.hris_attr(), set(&spec.hris_id)),
        ];
        for (k, v) in [
            ("givenName", &spec.given_name),
            ("mail", &spec.email),
            ("departmentNumber", &dept),
            ("title", &title),
            ("l", &loc),
        ] {
            if !v.is_empty() {
                attrs.push((k, set(v)));
            }
        }
        let d = dn.clone();
        self.op("adding the entry", |mut l| async move {
            l.add(&d, attrs).await?.success().map(|_| ())
        })
        .await?;
        self.get_account_by_login(&spec.login)
            .await?
            .ok_or_else(|| {
                AdapterError::new(
                    ErrorClass::Transient,
                    &self.about.system,
                    format!("{dn} was added but cannot be read back yet"),
                )
            })
    }

    async fn update_account(
        &self,
        external_id: &str,
        spec: &AccountSpec,
    ) -> AResult<RemoteAccount> {
        let e = self.require(external_id).await?;
        let a = |k: &str| spec.attributes.get(k).cloned().unwrap_or_default();
        let (dept, title, loc) = (a("department"), a("title"), a("location"));
        let mods = vec![
            Mod::Replace("cn", set(&spec.display_name)),
            Mod::Replace("sn", set(&spec.family_name)),
            Mod::Replace("givenName", set(&spec.given_name)),
            Mod::Replace("mail", set(&spec.email)),
            Mod::Replace("departmentNumber", set(&dept)),
            Mod::Replace("title", set(&title)),
            Mod::Replace("l", set(&loc)),
        ];
        self.modify(&e.dn, mods, "updating the entry").await?;
        Ok(self.account(&self.require(external_id).await?))
    }

    async fn deactivate_account(&self, external_id: &str) -> AResult<()> {
        already_done(Edit::Deactivate, self.set_disabled(external_id, true).await)
    }

    async fn reactivate_account(&self, external_id: &str) -> AResult<()> {
        self.set_disabled(external_id, false).await
    }

    async fn add_membership(&self, account_id: &str, target: &EntitlementTarget) -> AResult<()> {
        let user = self.require(account_id).await?;
        let group = self.group_dn(target);
        let attr = self.member_attr();
        let r = self
            .modify(
                &group,
                vec![Mod::Add(attr, set(&user.dn))],
                "adding the member",
            )
            .await;
        already_done(Edit::Grant, r)?;
        // The first real member frees the placeholder.
        let placeholder = self.placeholder();
        let r = self
            .modify(
                &group,
                vec![Mod::Delete(attr, set(&placeholder))],
                "removing the placeholder",
            )
            .await;
        already_done(Edit::Revoke, r)
    }

    async fn remove_membership(&self, account_id: &str, target: &EntitlementTarget) -> AResult<()> {
        let Some(user) = self.entry_of(account_id).await? else {
            return Ok(());
        };
        let group = self.group_dn(target);
        let attr = self.member_attr();
        match self
            .modify(
                &group,
                vec![Mod::Delete(attr, set(&user.dn))],
                "removing the member",
            )
            .await
        {
            // objectClassViolation: the last member of a groupOfNames; keep the placeholder.
            Err(e) if e.vendor_code.as_deref() == Some("65") => {
                let placeholder = self.placeholder();
                self.modify(
                    &group,
                    vec![Mod::Replace(attr, set(&placeholder))],
                    "replacing the last member with the placeholder",
                )
                .await
            }
            r => already_done(Edit::Revoke, r),
        }
    }
}
