//! What the simulated AWS account holds: IAM's users and groups, the identity store's users,
//! groups and memberships, and the account's access keys, under one lock. A leaf: the
//! services' handlers ([`super::iam`], [`super::identitystore`]) work on it, the router
//! ([`super`]) holds it.

use crate::sim::WriteCounts;
use chrono::{DateTime, Utc};
use serde_json::{Map, Value};
use std::collections::{BTreeMap, HashMap};
use std::time::Instant;

/// An IAM user as the simulator holds it.
#[derive(Debug, Clone)]
pub struct IamUser {
    pub user_name: String,
    pub user_id: String,
    pub arn: String,
    pub path: String,
    pub created: DateTime<Utc>,
    /// In the order they were first set.
    pub tags: Vec<(String, String)>,
    pub login_profile: bool,
    pub(crate) visible_at: Instant,
}

impl IamUser {
    pub fn tag(&self, key: &str) -> Option<&str> {
        self.tags
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

#[derive(Debug, Clone)]
pub struct IamGroup {
    pub group_name: String,
    pub group_id: String,
    pub arn: String,
    pub path: String,
    pub created: DateTime<Utc>,
    /// Member user names -> when the membership becomes visible to reads.
    pub(crate) members: BTreeMap<String, Instant>,
}

/// IAM's part of the account. Keys are lowercase names (IAM names are unique whatever
/// their case).
#[derive(Debug, Default)]
pub(crate) struct Iam {
    pub(crate) users: BTreeMap<String, IamUser>,
    pub(crate) groups: BTreeMap<String, IamGroup>,
    pub(crate) counts: WriteCounts,
}

/// An identity store user as the simulator holds it.
#[derive(Debug, Clone)]
pub struct StoreUser {
    pub user_id: String,
    pub user_name: String,
    /// The user's attributes as the API spells them (`Name`, `DisplayName`, `Emails`,
    /// `Title`, ...), without `UserId`, `UserName` and `IdentityStoreId`.
    pub attributes: Map<String, Value>,
    pub(crate) seq: u64,
    pub(crate) visible_at: Instant,
}

#[derive(Debug, Clone)]
pub struct StoreGroup {
    pub group_id: String,
    pub display_name: String,
    pub description: Option<String>,
    pub(crate) seq: u64,
}

#[derive(Debug, Clone)]
pub(crate) struct Membership {
    pub(crate) membership_id: String,
    pub(crate) group_id: String,
    pub(crate) user_id: String,
    pub(crate) seq: u64,
    pub(crate) visible_at: Instant,
}

#[derive(Debug, Default)]
pub(crate) struct Store {
    pub(crate) seq: u64,
    pub(crate) users: BTreeMap<String, StoreUser>,
    pub(crate) groups: BTreeMap<String, StoreGroup>,
    pub(crate) memberships: BTreeMap<String, Membership>,
    pub(crate) counts: WriteCounts,
}

impl Store {
    pub(crate) fn users_in_order(&self) -> Vec<StoreUser> {
        let mut v: Vec<StoreUser> = self.users.values().cloned().collect();
        v.sort_by_key(|u| u.seq);
        v
    }

    pub(crate) fn members_of_named(&self, display_name: &str) -> Vec<String> {
        let Some(g) = self
            .groups
            .values()
            .find(|g| g.display_name == display_name)
        else {
            return Vec::new();
        };
        self.memberships
            .values()
            .filter(|m| m.group_id == g.group_id)
            .map(|m| m.user_id.clone())
            .collect()
    }

    pub(crate) fn next_seq(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }
}

/// An access key of the account.
#[derive(Debug, Clone)]
pub(crate) struct AccessKey {
    pub(crate) user: String,
    pub(crate) secret: String,
    pub(crate) active: bool,
    pub(crate) created: chrono::DateTime<chrono::Utc>,
}

/// Everything the account holds; one lock for both services.
#[derive(Debug, Default)]
pub(crate) struct Account {
    pub(crate) iam: Iam,
    pub(crate) store: Store,
    /// Access key id -> key.
    pub(crate) keys: BTreeMap<String, AccessKey>,
    /// User names whose creation both services refuse: name (lowercase) -> message.
    pub(crate) rejected: HashMap<String, String>,
}
