//! An in-process directory: a stateful target that implements the [`Adapter`] contract
//! directly, with no HTTP, no rate limit and no latency.
//!
//! It exists to measure the engine's own ceiling (`accessdesk bench engine`): with every
//! vendor cost removed, what is left is the scheduler, the store and the identity checks.
//! It keeps real state (accounts by id and by case-folded login, the HR id on each account,
//! memberships per group) and answers like a directory that stores the HR id: "already
//! exists" on a duplicate login, NotFound for unknown accounts, Conflict for a membership
//! already there. It counts creates per login, so a bench can assert nothing happened twice.
//!
//! For reconciliation it holds every synced attribute (`RemoteAccount::attributes`, all
//! nine keys, "" where the spec had none; an update changes the ones its spec sets) and
//! lists its groups (`list_entitlements`: every group ever added to or seeded with
//! [`MemoryDirectory::add_group`]). Listings are one page unless
//! [`MemoryDirectory::with_page_size`] sets a size; the cursor is the last id (or group
//! name) of the previous page.

use crate::adapters::{
    AResult, About, AccountSpec, AdapterError, Capabilities, EntitlementTarget, ErrorClass,
    Identity, Page, Provisioner, Reader, RemoteAccount, RemoteEntitlement, RemoteMembership,
};
use async_trait::async_trait;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

/// Every key of `AccountSpec::synced_attributes`.
const SYNCED_KEYS: [&str; 9] = [
    "department",
    "title",
    "costCenter",
    "location",
    "manager",
    "email",
    "givenName",
    "familyName",
    "displayName",
];
use std::sync::Mutex;

#[derive(Default)]
struct State {
    next_id: u64,
    accounts: HashMap<String, RemoteAccount>,
    by_login: HashMap<String, String>,
    /// group name -> account ids
    members: HashMap<String, HashSet<String>>,
    /// Every group there is (with or without members).
    groups: BTreeSet<String>,
    creates: HashMap<String, u32>,
}

/// See the module docs.
pub struct MemoryDirectory {
    about: About,
    state: Mutex<State>,
    page_size: Option<usize>,
}

fn account_id(a: &RemoteAccount) -> &str {
    &a.external_id
}

fn group_name(e: &RemoteEntitlement) -> &str {
    &e.name
}

/// One page of `items` (sorted by `key`) after the cursor, and the next cursor.
fn page_of<T>(
    mut items: Vec<T>,
    key: impl Fn(&T) -> &str,
    cursor: Option<&str>,
    size: Option<usize>,
) -> Page<T> {
    items.sort_by(|a, b| key(a).cmp(key(b)));
    if let Some(c) = cursor {
        items.retain(|x| key(x) > c);
    }
    let Some(size) = size.filter(|n| *n < items.len()) else {
        return Page { items, next: None };
    };
    items.truncate(size);
    let next = items.last().map(|x| key(x).to_string());
    Page { items, next }
}

impl MemoryDirectory {
    pub fn new(system: &str) -> Self {
        MemoryDirectory {
            about: About {
                system: system.to_string(),
                api_version: "memory",
                limiter: None,
                capabilities: Capabilities {
                    suspend: false,
                    delete: false,
                    list_entitlements: true,
                    stores_hris_id: true,
                },
                watch: None,
                needed_scopes: Vec::new(),
            },
            state: Mutex::new(State::default()),
            page_size: None,
        }
    }

    /// Page every listing, `n` items at a time (at least 1).
    pub fn with_page_size(mut self, n: usize) -> Self {
        self.page_size = Some(n.max(1));
        self
    }

    /// A group that exists without members (groups also come into being on a first add).
    pub fn add_group(&self, name: &str) {
        self.state().groups.insert(name.to_string());
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// How many accounts exist.
    pub fn account_count(&self) -> usize {
        self.state().accounts.len()
    }

    /// How many memberships exist, over all groups.
    pub fn membership_count(&self) -> usize {
        self.state().members.values().map(HashSet::len).sum()
    }

    /// The highest number of creates sent for one login (more than 1 is a duplicate).
    pub fn max_creates(&self) -> u32 {
        self.state().creates.values().copied().max().unwrap_or(0)
    }

    fn not_found(&self, id: &str) -> AdapterError {
        AdapterError::new(
            ErrorClass::NotFound,
            &self.about.system,
            format!("no account {id}"),
        )
    }
}

#[async_trait]
impl Reader for MemoryDirectory {
    fn about(&self) -> &About {
        &self.about
    }

    async fn authenticate(&self) -> AResult<Identity> {
        Ok(Identity {
            principal: "bench".into(),
            scopes: vec![],
            details: BTreeMap::new(),
        })
    }

    async fn get_account_by_login(&self, login: &str) -> AResult<Option<RemoteAccount>> {
        let s = self.state();
        Ok(s.by_login
            .get(&login.to_lowercase())
            .and_then(|id| s.accounts.get(id))
            .cloned())
    }

    async fn get_account(&self, external_id: &str) -> AResult<Option<RemoteAccount>> {
        Ok(self.state().accounts.get(external_id).cloned())
    }

    async fn list_memberships(&self, account_id: &str) -> AResult<Vec<RemoteMembership>> {
        let s = self.state();
        let mut out: Vec<RemoteMembership> = s
            .members
            .iter()
            .filter(|(_, m)| m.contains(account_id))
            .map(|(g, _)| RemoteMembership {
                kind: crate::model::EntitlementKind::Group,
                name: g.clone(),
                external_id: g.clone(),
            })
            .collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    async fn list_accounts(&self, cursor: Option<String>) -> AResult<Page<RemoteAccount>> {
        let s = self.state();
        let items: Vec<RemoteAccount> = s.accounts.values().cloned().collect();
        Ok(page_of(
            items,
            account_id,
            cursor.as_deref(),
            self.page_size,
        ))
    }

    async fn list_members(
        &self,
        target: &EntitlementTarget,
        cursor: Option<String>,
    ) -> AResult<Page<RemoteAccount>> {
        let s = self.state();
        let items: Vec<RemoteAccount> = s
            .members
            .get(&target.name)
            .into_iter()
            .flatten()
            .filter_map(|id| s.accounts.get(id).cloned())
            .collect();
        Ok(page_of(
            items,
            account_id,
            cursor.as_deref(),
            self.page_size,
        ))
    }

    async fn list_entitlements(&self, cursor: Option<String>) -> AResult<Page<RemoteEntitlement>> {
        let items: Vec<RemoteEntitlement> = self
            .state()
            .groups
            .iter()
            .map(|g| RemoteEntitlement {
                kind: crate::model::EntitlementKind::Group,
                name: g.clone(),
                external_id: g.clone(),
            })
            .collect();
        Ok(page_of(
            items,
            group_name,
            cursor.as_deref(),
            self.page_size,
        ))
    }
}

#[async_trait]
impl Provisioner for MemoryDirectory {
    async fn create_account(&self, spec: &AccountSpec) -> AResult<RemoteAccount> {
        let mut s = self.state();
        let key = spec.login.to_lowercase();
        *s.creates.entry(key.clone()).or_insert(0) += 1;
        if s.by_login.contains_key(&key) {
            return Err(AdapterError::new(
                ErrorClass::Conflict,
                &self.about.system,
                format!("{} already exists", spec.login),
            ));
        }
        s.next_id += 1;
        let mut attributes = spec.synced_attributes();
        for k in SYNCED_KEYS {
            attributes.entry(k.to_string()).or_default();
        }
        let acc = RemoteAccount {
            external_id: format!("m{}", s.next_id),
            login: spec.login.clone(),
            email: Some(spec.email.clone()),
            active: true,
            hris_id: Some(spec.hris_id.clone()),
            attributes,
        };
        s.by_login.insert(key, acc.external_id.clone());
        s.accounts.insert(acc.external_id.clone(), acc.clone());
        Ok(acc)
    }

    async fn update_account(
        &self,
        external_id: &str,
        spec: &AccountSpec,
    ) -> AResult<RemoteAccount> {
        let mut s = self.state();
        let acc = s
            .accounts
            .get_mut(external_id)
            .ok_or_else(|| self.not_found(external_id))?;
        acc.email = Some(spec.email.clone());
        for (k, v) in spec.synced_attributes() {
            if !v.is_empty() && acc.attributes.contains_key(&k) {
                acc.attributes.insert(k, v);
            }
        }
        Ok(acc.clone())
    }

    /// An account that is gone is already deactivated.
    async fn deactivate_account(&self, external_id: &str) -> AResult<()> {
        if let Some(acc) = self.state().accounts.get_mut(external_id) {
            acc.active = false;
        }
        Ok(())
    }

    async fn reactivate_account(&self, external_id: &str) -> AResult<()> {
        let mut s = self.state();
        let acc = s
            .accounts
            .get_mut(external_id)
            .ok_or_else(|| self.not_found(external_id))?;
        acc.active = true;
        Ok(())
    }

    async fn add_membership(&self, account_id: &str, target: &EntitlementTarget) -> AResult<()> {
        let mut s = self.state();
        if !s.accounts.contains_key(account_id) {
            return Err(self.not_found(account_id));
        }
        s.groups.insert(target.name.clone());
        // Already a member: done (the adapter owns idempotency).
        s.members
            .entry(target.name.clone())
            .or_default()
            .insert(account_id.to_string());
        Ok(())
    }

    async fn remove_membership(&self, account_id: &str, target: &EntitlementTarget) -> AResult<()> {
        let mut s = self.state();
        // Not a member: done (the adapter owns idempotency).
        if let Some(m) = s.members.get_mut(&target.name) {
            m.remove(account_id);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{EntitlementKind, Person, SystemKind};

    #[tokio::test]
    async fn keeps_state_and_answers_like_a_directory() {
        let d = MemoryDirectory::new("m");
        let p = Person::new("E1", "Ada", "Lovelace", "ada@x.io");
        let spec = AccountSpec::for_person(&p, SystemKind::Scim, "ada@x.io");
        let a = d.create_account(&spec).await.unwrap();
        assert_eq!(a.hris_id.as_deref(), Some("E1"));
        let again = d.create_account(&spec).await.unwrap_err();
        assert_eq!(again.class, ErrorClass::Conflict);
        assert_eq!(d.max_creates(), 2);
        let found = d.get_account_by_login("ADA@x.io").await.unwrap().unwrap();
        assert_eq!(found.external_id, a.external_id);
        let g = EntitlementTarget {
            kind: EntitlementKind::Group,
            name: "eng".into(),
            external_id: "eng".into(),
        };
        d.add_membership(&a.external_id, &g).await.unwrap();
        // Granting again, revoking twice and deactivating what is gone are all done.
        d.add_membership(&a.external_id, &g).await.unwrap();
        assert_eq!(d.list_memberships(&a.external_id).await.unwrap().len(), 1);
        d.remove_membership(&a.external_id, &g).await.unwrap();
        d.remove_membership(&a.external_id, &g).await.unwrap();
        assert_eq!(d.membership_count(), 0);
        d.deactivate_account("gone").await.unwrap();
        assert_eq!(
            d.add_membership("nobody", &g).await.unwrap_err().class,
            ErrorClass::NotFound
        );
    }

    #[tokio::test]
    async fn holds_attributes_and_pages_every_listing() {
        let d = MemoryDirectory::new("m").with_page_size(2);
        let mut p = Person::new("E1", "Ada", "Lovelace", "ada@x.io");
        p.department = "Engineering".into();
        p.title = "Engineer".into();
        let spec = AccountSpec::for_person(&p, SystemKind::Scim, "ada@x.io");
        let a = d.create_account(&spec).await.unwrap();
        assert_eq!(a.attributes["department"], "Engineering");
        assert_eq!(a.attributes["title"], "Engineer");
        assert_eq!(a.attributes["location"], "", "held, and empty");
        assert_eq!(a.attributes.len(), SYNCED_KEYS.len());
        let mut moved = spec.clone();
        moved
            .attributes
            .insert("department".into(), "Research".into());
        d.update_account(&a.external_id, &moved).await.unwrap();
        let got = d.get_account(&a.external_id).await.unwrap().unwrap();
        assert_eq!(got.attributes["department"], "Research");

        for i in 0..4 {
            let p = Person::new(&format!("E{}", i + 2), "P", "Q", &format!("p{i}@x.io"));
            let s = AccountSpec::for_person(&p, SystemKind::Scim, &format!("p{i}@x.io"));
            d.create_account(&s).await.unwrap();
        }
        for g in ["a", "b", "c", "d", "e"] {
            d.add_group(g);
        }
        let ent = |name: &str| EntitlementTarget {
            kind: EntitlementKind::Group,
            name: name.into(),
            external_id: name.into(),
        };
        d.add_membership(&a.external_id, &ent("c")).await.unwrap();
        d.add_membership(&a.external_id, &ent("f")).await.unwrap();
        let groups = crate::adapters::collect_all(|c| d.list_entitlements(c), 0)
            .await
            .unwrap();
        let names: Vec<&str> = groups.iter().map(|g| g.name.as_str()).collect();
        assert_eq!(names, ["a", "b", "c", "d", "e", "f"]);
        let first = d.list_entitlements(None).await.unwrap();
        assert_eq!(first.items.len(), 2);
        assert_eq!(first.next.as_deref(), Some("b"));
        let accounts = crate::adapters::collect_all(|c| d.list_accounts(c), 0)
            .await
            .unwrap();
        assert_eq!(accounts.len(), 5);
        let c_group = ent("c");
        let members = crate::adapters::collect_all(|c| d.list_members(&c_group, c), 0)
            .await
            .unwrap();
        assert_eq!(members.len(), 1);
        assert_eq!(members[0].attributes["department"], "Research");
    }
}
