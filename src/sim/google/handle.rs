//! [`GoogleHandle`]: what tests and the demo steer and inspect, behind the API's back.

use super::auth::{AccessToken, ServiceAccount};
use super::groups::{self, Membership, SimGroup, SimMember};
use super::users::{self, SimUser};
use super::{Deprecation, Directory, Inner, LoggedRequest};
use crate::sim::fault::Faults;
use crate::sim::ratelimit::{ConcurrencyLimit, RateWindows};
use crate::sim::rules::FailRule;
use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use std::sync::{Arc, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

/// Steers and inspects a running simulator. Keys are e-mails (case-insensitively) or ids.
#[derive(Clone)]
pub struct GoogleHandle {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for GoogleHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("GoogleHandle")
    }
}

impl GoogleHandle {
    pub(super) fn new(inner: Arc<Inner>) -> Self {
        GoogleHandle { inner }
    }

    fn lock(&self) -> MutexGuard<'_, Directory> {
        self.inner.lock()
    }

    pub fn faults(&self) -> Arc<Faults> {
        self.inner.faults.clone()
    }

    /// The per-user quota windows (one bucket per user); [`RateWindows::set_limit`] with
    /// `None` changes every user's limit at run time.
    pub fn limits(&self) -> Arc<RateWindows> {
        self.inner.limits.clone()
    }

    /// The concurrency limit of one operation (`directory.members.insert`...).
    pub fn concurrency(&self, operation: &str) -> Option<Arc<ConcurrencyLimit>> {
        self.inner.concurrency.get(operation).cloned()
    }

    /// Every operation's concurrency limit at once (0: none).
    pub fn set_concurrency_limit(&self, limit: u32) {
        for l in self.inner.concurrency.values() {
            l.set_limit(limit);
        }
    }

    /// The customer id `my_customer` stands for.
    pub fn customer_id(&self) -> String {
        self.inner.customer_id.clone()
    }

    pub fn domains(&self) -> Vec<String> {
        self.inner.domains.clone()
    }

    /// The super admin every simulator starts with: `accessdesk.admin@<first domain>`.
    pub fn admin_email(&self) -> String {
        let domain = self
            .inner
            .domains
            .first()
            .map_or("example.com", String::as_str);
        format!("{}@{domain}", super::ADMIN_LOCAL_PART)
    }

    // -- OAuth ------------------------------------------------------------------------

    /// Register a service account's public key (PEM, RSA) and its domain-wide delegation:
    /// the scopes it may ask for.
    pub fn register_service_account(&self, email: &str, public_key_pem: &str, scopes: &[&str]) {
        self.lock().accounts.insert(
            email.to_string(),
            ServiceAccount {
                public_key_pem: public_key_pem.to_string(),
                scopes: scopes.iter().map(|s| s.to_string()).collect(),
            },
        );
    }

    pub fn remove_service_account(&self, email: &str) {
        self.lock().accounts.remove(email);
    }

    /// An access token for `subject` (a user's key) with these scopes, without the token
    /// endpoint (for tests that are not about it). None when there is no such user.
    pub fn issue_token(&self, subject: &str, scopes: &[&str]) -> Option<String> {
        let ttl = self.inner.settings().token_ttl;
        let mut d = self.lock();
        let id = users::find(&d, subject)?;
        let token = format!("ya29.c.sim-{}", d.tokens.len() + 1);
        d.tokens.insert(
            token.clone(),
            AccessToken {
                subject: Some(id),
                scopes: scopes.iter().map(|s| s.to_string()).collect(),
                expires: SystemTime::now() + ttl,
                revoked: false,
            },
        );
        Some(token)
    }

    /// Revoke every access token issued so far (the service accounts stay registered).
    pub fn revoke_access_tokens(&self) {
        for t in self.lock().tokens.values_mut() {
            t.revoked = true;
        }
    }

    /// Lifetime of the access tokens issued from now on.
    pub fn set_token_ttl(&self, ttl: Duration) {
        self.inner.settings().token_ttl = ttl;
    }

    /// How many requests reached the token endpoint.
    pub fn token_requests(&self) -> u64 {
        self.lock().token_requests
    }

    /// Every access token issued so far (for leak tests: none may appear in logs).
    pub fn issued_access_tokens(&self) -> Vec<String> {
        self.lock().tokens.keys().cloned().collect()
    }

    // -- Quirks and faults ----------------------------------------------------------

    /// Send `Deprecation` and `Sunset` on every answer (None: stop).
    pub fn set_deprecation(&self, notice: Option<Deprecation>) {
        self.inner.settings().deprecation = notice;
    }

    /// For users created from now on: how long updates and deletes answer 412 "User
    /// creation is not complete.".
    pub fn set_creation_settle(&self, settle: Duration) {
        self.inner.settings().creation_settle = settle;
    }

    /// Add a deterministic fault rule (first matching rule wins).
    pub fn fail(&self, rule: FailRule) {
        self.inner.rules.add(rule);
    }

    pub fn clear_rules(&self) {
        self.inner.rules.clear();
    }

    pub fn set_lost_response_rate(&self, rate: f64) {
        self.inner.rules.set_lost_response_rate(rate);
    }

    // -- Seeding (visible at once, not counted as creates or adds) ----------------------

    /// A user made outside the API (seeded, or by hand in the Admin console: no
    /// `externalIds` unless `fields` has them), visible at once. `fields` is a User body
    /// (`name` with `givenName` and `familyName` required). Returns the id.
    pub fn seed_user_with(&self, email: &str, fields: Value) -> Result<String, String> {
        let Value::Object(mut body) = fields else {
            return Err("a user's fields are a JSON object".into());
        };
        body.insert("primaryEmail".into(), json!(email));
        body.entry("password").or_insert(json!("seeded-password"));
        users::validate(&body, true).map_err(|_| format!("invalid user fields for {email}"))?;
        if !self.inner.owns(email) {
            return Err(format!("{email} is not in the simulator's domains"));
        }
        let mut d = self.lock();
        if users::find(&d, email).is_some() {
            return Err(format!("{email} already exists"));
        }
        let now = Instant::now();
        let id = users::new_user(&mut d, email, false, now, now);
        if let Some(u) = d.users.get_mut(&id) {
            users::apply(u, body, false);
        }
        Ok(id)
    }

    /// A user with just a name (no `externalIds`): an account made by hand.
    pub fn seed_user(&self, email: &str, given: &str, family: &str) -> Result<String, String> {
        self.seed_user_with(
            email,
            json!({"name": {"givenName": given, "familyName": family}}),
        )
    }

    /// Same as [`Self::seed_user`]: a person created in the Admin console, outside the
    /// engine (no HR id on it).
    pub fn create_user_by_hand(
        &self,
        email: &str,
        given: &str,
        family: &str,
    ) -> Result<String, String> {
        self.seed_user(email, given, family)
    }

    /// A super admin (someone the service account may impersonate).
    pub fn seed_admin(&self, email: &str, given: &str, family: &str) -> Result<String, String> {
        let id = self.seed_user(email, given, family)?;
        self.set_admin(&id, true);
        Ok(id)
    }

    pub fn seed_group(&self, email: &str, name: &str) -> Result<String, String> {
        let mut d = self.lock();
        if groups::find(&d, email).is_some() || users::find(&d, email).is_some() {
            return Err(format!("{email} already exists"));
        }
        Ok(groups::new_group(&mut d, email, name, ""))
    }

    /// Put users into a group (role MEMBER), visible at once, not counted as adds.
    /// Returns how many were not members before; an unknown group or user changes nothing.
    pub fn seed_members(&self, group: &str, members: &[&str]) -> Result<usize, String> {
        let mut d = self.lock();
        let gid = groups::find(&d, group).ok_or_else(|| format!("no group {group}"))?;
        let uids = members
            .iter()
            .map(|m| users::find(&d, m).ok_or_else(|| format!("no user {m}")))
            .collect::<Result<Vec<_>, _>>()?;
        let now = Instant::now();
        let mut added = 0;
        for uid in uids {
            let m = Membership {
                role: "MEMBER".into(),
                visible_at: now,
            };
            added += usize::from(d.members.insert((gid.clone(), uid), m).is_none());
        }
        Ok(added)
    }

    // -- Drift: changes behind the adapter's back ---------------------------------------

    /// Change a user as `users.patch` would (validated the same way; `suspended`,
    /// `externalIds`, `organizations`, `relations`, `name`...; not `primaryEmail`).
    /// False: no such user, or a change refused.
    pub fn update_user(&self, key: &str, patch: Value) -> bool {
        let Value::Object(body) = patch else {
            return false;
        };
        if users::validate(&body, false).is_err() || body.contains_key("primaryEmail") {
            return false;
        }
        let mut d = self.lock();
        let Some(u) = users::find(&d, key).and_then(|id| d.users.get_mut(&id)) else {
            return false;
        };
        users::apply(u, body, true);
        true
    }

    /// Suspend (reason `ADMIN`) or unsuspend a user.
    pub fn suspend_user(&self, key: &str, suspended: bool) -> bool {
        self.update_user(key, json!({ "suspended": suspended }))
    }

    /// Make a user a super admin or take it away.
    pub fn set_admin(&self, key: &str, admin: bool) -> bool {
        let mut d = self.lock();
        let Some(u) = users::find(&d, key).and_then(|id| d.users.get_mut(&id)) else {
            return false;
        };
        u.is_admin = admin;
        true
    }

    /// Record a sign-in (`lastLoginTime`).
    pub fn set_last_login(&self, key: &str, at: DateTime<Utc>) -> bool {
        let mut d = self.lock();
        let Some(u) = users::find(&d, key).and_then(|id| d.users.get_mut(&id)) else {
            return false;
        };
        u.last_login_time = Some(at);
        true
    }

    /// Delete a user (and their memberships).
    pub fn delete_user(&self, key: &str) -> bool {
        let mut d = self.lock();
        users::find(&d, key).is_some_and(|id| users::remove_user(&mut d, &id))
    }

    /// Add a member by hand (visible at once, not counted). False if already one, or
    /// the group or user is unknown.
    pub fn add_member(&self, group: &str, user: &str) -> bool {
        self.seed_members(group, &[user]) == Ok(1)
    }

    /// Remove a member by hand. False if they were not one.
    pub fn remove_member(&self, group: &str, user: &str) -> bool {
        let mut d = self.lock();
        match (groups::find(&d, group), users::find(&d, user)) {
            (Some(g), Some(u)) => d.members.remove(&(g, u)).is_some(),
            _ => false,
        }
    }

    // -- Inspection (the truth, whatever reads see yet) ------------------------------------

    pub fn users(&self) -> Vec<SimUser> {
        self.lock().users.values().cloned().collect()
    }

    pub fn user(&self, key: &str) -> Option<SimUser> {
        let d = self.lock();
        users::find(&d, key).and_then(|id| d.users.get(&id).cloned())
    }

    /// A user as `users.get` would return it (the JSON resource).
    pub fn user_resource(&self, key: &str) -> Option<Value> {
        self.user(key)
            .map(|u| users::user_json(&u, &self.inner.customer_id))
    }

    pub fn groups(&self) -> Vec<SimGroup> {
        self.lock().groups.values().cloned().collect()
    }

    pub fn group(&self, key: &str) -> Option<SimGroup> {
        let d = self.lock();
        groups::find(&d, key).and_then(|id| d.groups.get(&id).cloned())
    }

    /// A group's true members, in user id order.
    pub fn members(&self, group: &str) -> Vec<SimMember> {
        let d = self.lock();
        let Some(gid) = groups::find(&d, group) else {
            return Vec::new();
        };
        d.members
            .range((gid.clone(), String::new())..)
            .take_while(|((g, _), _)| *g == gid)
            .filter_map(|((_, uid), m)| {
                let u = d.users.get(uid)?;
                Some(SimMember {
                    user_id: uid.clone(),
                    email: u.primary_email.clone(),
                    role: m.role.clone(),
                })
            })
            .collect()
    }

    // -- Counters and the request log -------------------------------------------------------

    /// How many times `users.insert` created this primary e-mail (more than 1: a
    /// duplicate account).
    pub fn creates_for(&self, email: &str) -> u32 {
        self.lock().counts.creates_for(email)
    }

    pub fn max_creates(&self) -> u32 {
        self.lock().counts.max_creates()
    }

    /// How many times `members.insert` added this user to this group.
    pub fn membership_adds(&self, group: &str, user: &str) -> u32 {
        let d = self.lock();
        match (groups::find(&d, group), users::find(&d, user)) {
            (Some(g), Some(u)) => d.counts.adds_for(&g, &u),
            _ => 0,
        }
    }

    pub fn max_membership_adds(&self) -> u32 {
        self.lock().counts.max_adds()
    }

    /// Every request seen so far.
    pub fn log(&self) -> Vec<LoggedRequest> {
        self.inner.log.entries()
    }

    pub fn count(&self, f: impl Fn(&LoggedRequest) -> bool) -> usize {
        self.inner.log.count(f)
    }

    pub fn clear_log(&self) {
        self.inner.log.clear();
    }
}
