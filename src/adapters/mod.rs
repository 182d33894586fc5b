//! The adapter contract: how accessdesk talks to one target system.
//!
//! An adapter speaks one vendor's real API (auth, pagination, rate limits, error shapes)
//! and exposes the same small surface to the engine: accounts, memberships, and paginated
//! listings for reconciliation. Every failure is an [`AdapterError`] with a class the
//! engine acts on (retry, fail, treat as success) and the vendor's own status, code and a
//! short, redacted body excerpt for the admin.
//!
//! Adapters never touch the store; the engine owns persistence.

pub mod auth;
pub mod aws;
pub mod aws_iam;
pub mod aws_identitystore;
pub mod entra;
pub mod error;
pub mod github;
pub mod google_workspace;
pub mod http;
pub mod kit;
pub mod ldap;
pub mod okta;
pub mod registry;
pub mod scim;
pub mod slack;

pub use error::{AResult, AdapterError, ErrorClass};
pub use kit::names::NameCache;
pub use kit::paging::collect_all;

use async_trait::async_trait;
use serde::Serialize;
use std::collections::BTreeMap;

/// Who we are in the target system, and what we may do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Identity {
    /// The principal the credential belongs to (a user, service app, IAM user ARN, ...).
    pub principal: String,
    /// Scopes or permissions granted, as the vendor names them.
    pub scopes: Vec<String>,
    /// Anything else worth showing (org id, API version, provider capabilities).
    pub details: BTreeMap<String, String>,
}

/// What we want an account to look like. Built from a person by name shaping.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct AccountSpec {
    pub hris_id: String,
    pub login: String,
    pub email: String,
    pub given_name: String,
    pub family_name: String,
    pub display_name: String,
    /// Extra vendor profile attributes (department, title, cost center, location, and
    /// `manager`: the manager's HR id).
    pub attributes: BTreeMap<String, String>,
    /// The manager's account id in this target (SCIM `manager.value`, Okta `managerId`),
    /// where the engine knows their account there; None leaves it out.
    pub manager_account: Option<String>,
}

impl AccountSpec {
    /// Shape a person for a kind of system, with the login assigned to them there (see
    /// model/login.rs; logins are assigned once, never recomputed from the name).
    pub fn for_person(
        p: &crate::model::Person,
        kind: crate::model::SystemKind,
        login: &str,
    ) -> Self {
        let shaped = crate::model::names::shape(p, kind);
        let mut attributes = BTreeMap::new();
        for (k, v) in [
            ("department", &p.department),
            ("title", &p.title),
            ("costCenter", &p.cost_center),
            ("location", &p.location),
        ] {
            if !v.is_empty() {
                attributes.insert(k.to_string(), v.clone());
            }
        }
        if let Some(m) = p.manager_id.as_deref().filter(|m| !m.trim().is_empty()) {
            attributes.insert("manager".to_string(), m.to_string());
        }
        AccountSpec {
            hris_id: p.hris_id.clone(),
            login: login.to_string(),
            email: p.email.clone(),
            given_name: shaped.given,
            family_name: shaped.family,
            display_name: shaped.display,
            attributes,
            manager_account: None,
        }
    }

    /// The attributes accessdesk keeps in sync on the account (everything but the login,
    /// which is assigned once): a change in any of them is a mover's update.
    pub fn synced_attributes(&self) -> BTreeMap<String, String> {
        let mut m = self.attributes.clone();
        for (k, v) in [
            ("email", &self.email),
            ("givenName", &self.given_name),
            ("familyName", &self.family_name),
            ("displayName", &self.display_name),
        ] {
            m.insert(k.to_string(), v.clone());
        }
        m
    }

    /// Shape a person with the kind's default login template (tests, previews).
    pub fn from_person(p: &crate::model::Person, kind: crate::model::SystemKind) -> Self {
        let login = crate::model::login::LoginTemplate::default_for(kind).render(p, kind);
        Self::for_person(p, kind, &login)
    }
}

/// An account as the target system reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RemoteAccount {
    /// The vendor's id for the account (Okta user id, SCIM id, IAM user name, ...).
    pub external_id: String,
    pub login: String,
    pub email: Option<String>,
    pub active: bool,
    /// The HRIS id, where the system stores it (a tag, a profile field, externalId).
    pub hris_id: Option<String>,
    /// The synced attributes as the target holds them, under the keys of
    /// [`AccountSpec::synced_attributes`] (`department`, `title`, `costCenter`, `location`,
    /// `manager`, `email`, `givenName`, `familyName`, `displayName`). An adapter fills only
    /// the keys it writes on create/update and reads back here; an empty value means the
    /// target holds nothing for a key it does hold. A key that is absent is not known
    /// (never "empty"): reconciliation must not read drift into it.
    pub attributes: BTreeMap<String, String>,
}

/// A group (or other entitlement) as the target system reports it, catalogued or not.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RemoteEntitlement {
    pub kind: crate::model::EntitlementKind,
    /// The vendor's name for it (what a catalogue entry would name).
    pub name: String,
    /// The vendor's id (what `list_members` and memberships take as `external_id`).
    pub external_id: String,
}

impl RemoteEntitlement {
    /// The target a listing of its members takes.
    pub fn target(&self) -> EntitlementTarget {
        EntitlementTarget {
            kind: self.kind,
            name: self.name.clone(),
            external_id: self.external_id.clone(),
        }
    }
}

/// Which entitlement an operation is about, as the adapter needs it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EntitlementTarget {
    pub kind: crate::model::EntitlementKind,
    /// The catalogue name (what policies say).
    pub name: String,
    /// The vendor id if the catalogue configured one; adapters that need an id resolve the
    /// name themselves when this equals `name`.
    pub external_id: String,
}

impl EntitlementTarget {
    pub fn from_entitlement(e: &crate::model::Entitlement, name: &str) -> Self {
        EntitlementTarget {
            kind: e.kind,
            name: name.to_string(),
            external_id: e.external_id.clone(),
        }
    }
}

/// A membership as the target system reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RemoteMembership {
    pub kind: crate::model::EntitlementKind,
    pub name: String,
    pub external_id: String,
}

/// One page of a listing. `next` is an opaque cursor: pass it back to get the next page,
/// or to resume from this point after a failure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next: Option<String>,
}

/// What a system can do beyond the contract every adapter keeps, declared by its adapter
/// rather than discovered from an "unsupported" answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct Capabilities {
    /// Suspend: block sign-in temporarily, keeping everything.
    pub suspend: bool,
    /// Delete an account for good (a leaver policy of `delete`).
    pub delete: bool,
    /// List every group the target has, catalogued or not (reconciliation).
    pub list_entitlements: bool,
    /// Accounts carry the HR id accessdesk writes (an IAM tag, an Okta profile attribute,
    /// SCIM externalId). Where they cannot, the only proof that an existing account is a
    /// person's is accessdesk's own record of creating it.
    pub stores_hris_id: bool,
}

/// What every adapter says about itself, held once: the configured system name, the
/// vendor API version it speaks (pinned in one place per adapter), the limiter its
/// requests go through (for the console's rate gauge) and its capabilities.
#[derive(Debug, Clone)]
pub struct About {
    pub system: String,
    pub api_version: &'static str,
    pub limiter: Option<std::sync::Arc<http::RateLimiter>>,
    pub capabilities: Capabilities,
    /// What the adapter notices of its vendor (API-version watch, credential hygiene).
    pub watch: Option<std::sync::Arc<kit::watch::Watch>>,
    /// The scopes (or permissions) the adapter needs, as the vendor names them; empty
    /// where the credential has none to compare (an SSWS token, AWS keys).
    pub needed_scopes: Vec<String>,
}

impl About {
    /// An HTTP adapter's: the system and limiter are its client's.
    pub fn of(
        http: &http::HttpClient,
        api_version: &'static str,
        capabilities: Capabilities,
    ) -> Self {
        About {
            system: http.system().to_string(),
            api_version,
            limiter: Some(http.limiter.clone()),
            capabilities,
            watch: Some(http.watch.clone()),
            needed_scopes: Vec::new(),
        }
    }

    /// The scopes the adapter needs.
    pub fn needing(mut self, scopes: &[&str]) -> Self {
        self.needed_scopes = scopes.iter().map(|s| s.to_string()).collect();
        self
    }
}

/// The reading side: what reconciliation needs from every system.
#[async_trait]
pub trait Reader: Send + Sync {
    fn about(&self) -> &About;
    /// The configured system name.
    fn system(&self) -> &str {
        &self.about().system
    }
    /// The vendor API version this adapter speaks.
    fn api_version(&self) -> &str {
        self.about().api_version
    }
    fn capabilities(&self) -> Capabilities {
        self.about().capabilities
    }
    /// The limiter this adapter's requests go through.
    fn limiter(&self) -> Option<std::sync::Arc<http::RateLimiter>> {
        self.about().limiter.clone()
    }
    /// What the adapter noticed of its vendor.
    fn watch(&self) -> Option<std::sync::Arc<kit::watch::Watch>> {
        self.about().watch.clone()
    }
    /// Whether accounts here carry the HR id accessdesk writes ([`Capabilities`]).
    fn stores_hris_id(&self) -> bool {
        self.capabilities().stores_hris_id
    }

    /// Check the credential: who are we, with which scopes.
    async fn authenticate(&self) -> AResult<Identity>;

    async fn get_account_by_login(&self, login: &str) -> AResult<Option<RemoteAccount>>;
    async fn get_account(&self, external_id: &str) -> AResult<Option<RemoteAccount>>;
    async fn list_memberships(&self, account_id: &str) -> AResult<Vec<RemoteMembership>>;

    /// One page of all accounts (reconciliation).
    async fn list_accounts(&self, cursor: Option<String>) -> AResult<Page<RemoteAccount>>;
    /// One page of the members of one entitlement (reconciliation).
    async fn list_members(
        &self,
        target: &EntitlementTarget,
        cursor: Option<String>,
    ) -> AResult<Page<RemoteAccount>>;
    /// One page of every group the target has, catalogued or not (reconciliation finds
    /// memberships in groups the catalogue does not list). Each listed group appears once
    /// over the whole listing; a failed page is fetched again from its own cursor. Only
    /// called where [`Capabilities::list_entitlements`] is declared.
    async fn list_entitlements(&self, _cursor: Option<String>) -> AResult<Page<RemoteEntitlement>> {
        Err(AdapterError::unsupported(
            self.system(),
            "list entitlements",
        ))
    }
}

/// The provisioning side: create, update, deactivate, grant, revoke.
///
/// Idempotency is the adapter's: "already a member" from `add_membership`, "not a member"
/// or "already gone" from `remove_membership` and `deactivate_account` are success, and
/// only the adapter can tell those from "the group does not exist". The engine takes
/// every error it gets as a failure. `create_account` is the exception: "already exists"
/// comes back as [`ErrorClass::Conflict`], because only the engine can decide from the
/// account's HR id whether it is this person's (engine/identity.rs).
#[async_trait]
pub trait Provisioner: Reader {
    async fn create_account(&self, spec: &AccountSpec) -> AResult<RemoteAccount>;
    /// Partial update: only the fields in `spec` are sent.
    async fn update_account(&self, external_id: &str, spec: &AccountSpec)
    -> AResult<RemoteAccount>;
    async fn deactivate_account(&self, external_id: &str) -> AResult<()>;
    async fn reactivate_account(&self, external_id: &str) -> AResult<()>;
    /// Suspend (temporarily block sign-in, keep everything), where
    /// [`Capabilities::suspend`] is declared.
    async fn suspend_account(&self, _external_id: &str) -> AResult<()> {
        Err(AdapterError::unsupported(self.system(), "suspend"))
    }
    /// Delete the account for good (a leaver policy of `delete`), where
    /// [`Capabilities::delete`] is declared. An account that is already gone counts as
    /// deleted.
    async fn delete_account(&self, _external_id: &str) -> AResult<()> {
        Err(AdapterError::unsupported(self.system(), "delete"))
    }
    async fn add_membership(&self, account_id: &str, target: &EntitlementTarget) -> AResult<()>;
    async fn remove_membership(&self, account_id: &str, target: &EntitlementTarget) -> AResult<()>;
}

/// A whole adapter: both sides. Every [`Provisioner`] is one.
pub trait Adapter: Provisioner {}
impl<T: Provisioner + ?Sized> Adapter for T {}

/// The contract's traits, for `use accessdesk::adapters::prelude::*`.
pub mod prelude {
    pub use super::{Adapter, Provisioner, Reader};
}
