//! [`EntraHandle`]: what tests and the demo steer and inspect, behind the API's back.

use super::auth::{self, App};
use super::groups::{self, SimGroup};
use super::users::{self, SimUser};
use super::{Deprecation, Directory, Inner, LoggedRequest, random_guid};
use crate::sim::fault::Faults;
use crate::sim::ratelimit::RateWindows;
use crate::sim::rules::FailRule;
use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use std::sync::{Arc, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

/// Steers and inspects a running simulator. Users are named by id or
/// `userPrincipalName` (case-insensitively), groups by id or display name.
#[derive(Clone)]
pub struct EntraHandle {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for EntraHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("EntraHandle")
    }
}

impl EntraHandle {
    pub(super) fn new(inner: Arc<Inner>) -> Self {
        EntraHandle { inner }
    }

    fn lock(&self) -> MutexGuard<'_, Directory> {
        self.inner.lock()
    }

    pub fn faults(&self) -> Arc<Faults> {
        self.inner.faults.clone()
    }

    /// The per-app throttle windows (one bucket per client id); [`RateWindows::set_limit`]
    /// with `None` changes every app's limit at run time.
    pub fn limits(&self) -> Arc<RateWindows> {
        self.inner.limits.clone()
    }

    pub fn tenant_id(&self) -> String {
        self.inner.tenant_id.clone()
    }

    pub fn domains(&self) -> Vec<String> {
        self.inner.domains.clone()
    }

    // -- Apps and tokens ---------------------------------------------------------------

    /// Register an app (its client id, one client secret valid for two years, and the
    /// application permissions admin-consented for it: the tokens' `roles`). Registering
    /// again replaces it.
    pub fn register_app(&self, client_id: &str, secret: &str, roles: &[&str]) {
        let now = Utc::now();
        let mut d = self.lock();
        let object_id = self.inner.new_id(&mut d);
        d.apps.insert(
            client_id.to_string(),
            App {
                object_id,
                display_name: format!("accessdesk ({client_id})"),
                secret: secret.to_string(),
                roles: roles.iter().map(|r| r.to_string()).collect(),
                key_id: random_guid(),
                secret_start: now,
                secret_end: now + chrono::Duration::days(730),
                created: now,
            },
        );
    }

    /// Change an app's permissions (tokens issued before keep theirs, as at Entra).
    pub fn set_app_roles(&self, client_id: &str, roles: &[&str]) -> bool {
        let mut d = self.lock();
        let Some(app) = d.apps.get_mut(client_id) else {
            return false;
        };
        app.roles = roles.iter().map(|r| r.to_string()).collect();
        true
    }

    /// When the app's client secret expires (`passwordCredentials[0].endDateTime`); past
    /// it, the token endpoint answers AADSTS7000222.
    pub fn set_secret_end(&self, client_id: &str, end: DateTime<Utc>) -> bool {
        let mut d = self.lock();
        let Some(app) = d.apps.get_mut(client_id) else {
            return false;
        };
        app.secret_end = end;
        true
    }

    /// An access token for a registered app, without the token endpoint (for tests that
    /// are not about it).
    pub fn issue_token(&self, client_id: &str) -> Option<String> {
        let roles = self.lock().apps.get(client_id)?.roles.clone();
        let ttl = self.inner.settings().token_ttl;
        Some(auth::mint(&self.inner, client_id, roles, ttl))
    }

    /// Revoke every access token issued so far (the apps stay registered).
    pub fn revoke_tokens(&self) {
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

    // -- Quirks and faults ------------------------------------------------------------

    /// Send `Deprecation` and `Sunset` on every answer (None: stop).
    pub fn set_deprecation(&self, notice: Option<Deprecation>) {
        self.inner.settings().deprecation = notice;
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

    // -- Seeding and drift (visible at once, not counted as creates or adds) -------------

    /// A user made outside the API (seeded, or by hand in the Entra admin center),
    /// visible at once. `fields` are user properties as `POST /users` takes them, without
    /// `passwordProfile`; `displayName` and `mailNickname` default from the UPN. Returns
    /// the id.
    pub fn seed_user(&self, upn: &str, fields: Value) -> Result<String, String> {
        let Value::Object(mut body) = fields else {
            return Err("a user's fields are a JSON object".into());
        };
        let local = upn.split('@').next().unwrap_or(upn).to_string();
        body.insert("userPrincipalName".into(), json!(upn));
        body.entry("accountEnabled").or_insert(json!(true));
        body.entry("displayName").or_insert(json!(local));
        body.entry("mailNickname").or_insert(json!(local));
        body.entry("passwordProfile")
            .or_insert(json!({"password": "seeded-Passw0rd!"}));
        users::validate(&self.inner, &body, true)
            .map_err(|_| format!("invalid user fields for {upn}"))?;
        let mut d = self.lock();
        if users::find(&d, upn).is_some() {
            return Err(format!("{upn} already exists"));
        }
        let id = users::new_user(&self.inner, &mut d, upn, false, Instant::now());
        if let Some(u) = d.users.get_mut(&id) {
            users::apply(u, body);
        }
        Ok(id)
    }

    /// A person created by hand in the admin center, outside the engine: a display name,
    /// no `employeeId`.
    pub fn create_user_by_hand(&self, upn: &str, display_name: &str) -> Result<String, String> {
        self.seed_user(upn, json!({ "displayName": display_name }))
    }

    /// A security group (mail-enabled when `mail` is given). Returns the id.
    pub fn seed_group(
        &self,
        display_name: &str,
        mail_nickname: &str,
        mail: Option<&str>,
    ) -> Result<String, String> {
        let mut d = self.lock();
        if groups::find(&d, display_name).is_some() {
            return Err(format!("a group named {display_name} already exists"));
        }
        Ok(groups::new_group(
            &self.inner,
            &mut d,
            display_name,
            mail_nickname,
            mail,
        ))
    }

    /// Put users into a group, visible at once, not counted as adds. Returns how many
    /// were not members before; an unknown group or user changes nothing.
    pub fn seed_members(&self, group: &str, members: &[&str]) -> Result<usize, String> {
        let mut d = self.lock();
        let gid = groups::find(&d, group).ok_or_else(|| format!("no group {group}"))?;
        let uids = members
            .iter()
            .map(|m| users::find(&d, m).ok_or_else(|| format!("no user {m}")))
            .collect::<Result<Vec<_>, _>>()?;
        let now = Instant::now();
        Ok(uids
            .into_iter()
            .filter(|uid| d.members.insert((gid.clone(), uid.clone()), now).is_none())
            .count())
    }

    /// Change a user as a PATCH would (validated the same way; a new UPN must be free).
    /// False: no such user, or a change refused.
    pub fn update_user(&self, key: &str, patch: Value) -> bool {
        let Value::Object(body) = patch else {
            return false;
        };
        if users::validate(&self.inner, &body, false).is_err() {
            return false;
        }
        let mut d = self.lock();
        let Some(id) = users::find(&d, key) else {
            return false;
        };
        if let Some(upn) = body.get("userPrincipalName").and_then(Value::as_str) {
            if users::find(&d, upn).is_some_and(|other| other != id) {
                return false;
            }
            let old = d
                .users
                .get(&id)
                .map(|u| u.user_principal_name.to_lowercase());
            old.map(|o| d.by_upn.remove(&o));
            d.by_upn.insert(upn.to_lowercase(), id.clone());
        }
        d.users
            .get_mut(&id)
            .map(|u| users::apply(u, body))
            .is_some()
    }

    /// Block (or unblock) sign-in: `accountEnabled`.
    pub fn disable_user(&self, key: &str, disabled: bool) -> bool {
        self.update_user(key, json!({ "accountEnabled": !disabled }))
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

    // -- Inspection (the truth, whatever reads see yet) ---------------------------------

    pub fn users(&self) -> Vec<SimUser> {
        self.lock().users.values().cloned().collect()
    }

    pub fn user(&self, key: &str) -> Option<SimUser> {
        let d = self.lock();
        users::find(&d, key).and_then(|id| d.users.get(&id).cloned())
    }

    /// Every property the simulator holds for a user, as Graph would write them.
    pub fn user_resource(&self, key: &str) -> Option<Value> {
        self.user(key).map(|u| users::user_json(&u))
    }

    pub fn groups(&self) -> Vec<SimGroup> {
        self.lock().groups.values().cloned().collect()
    }

    pub fn group(&self, key: &str) -> Option<SimGroup> {
        let d = self.lock();
        groups::find(&d, key).and_then(|id| d.groups.get(&id).cloned())
    }

    /// A group's true members' UPNs, in user id order.
    pub fn members(&self, group: &str) -> Vec<String> {
        let d = self.lock();
        let gid = groups::find(&d, group);
        d.members
            .keys()
            .filter(|(g, _)| Some(g) == gid.as_ref())
            .filter_map(|(_, u)| d.users.get(u).map(|u| u.user_principal_name.clone()))
            .collect()
    }

    /// The display names of the groups a user truly belongs to.
    pub fn member_of(&self, user: &str) -> Vec<String> {
        let d = self.lock();
        let uid = users::find(&d, user);
        d.members
            .keys()
            .filter(|(_, u)| Some(u) == uid.as_ref())
            .filter_map(|(g, _)| d.groups.get(g).map(|g| g.display_name.clone()))
            .collect()
    }

    // -- Counters and the request log ----------------------------------------------------

    /// How many times `POST /users` created this UPN (more than 1: a duplicate account).
    pub fn creates_for(&self, upn: &str) -> u32 {
        self.lock().counts.creates_for(upn)
    }

    pub fn max_creates(&self) -> u32 {
        self.lock().counts.max_creates()
    }

    /// How many times `members/$ref` added this user to this group.
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

    /// Whether an access token is still accepted (issued, not revoked, not expired).
    pub fn token_is_live(&self, token: &str) -> bool {
        self.lock()
            .tokens
            .get(token)
            .is_some_and(|t| !t.revoked && t.expires > SystemTime::now())
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::super::{EntraSimOptions, Settings};
    use super::*;
    use crate::sim::fault::ThrottleStyle;
    use crate::sim::log::RequestLog;
    use crate::sim::rules::Rules;
    use std::sync::Mutex;

    /// A simulator's state without a server.
    pub(in super::super) fn inner() -> (Arc<Inner>, EntraHandle) {
        let o = EntraSimOptions::default();
        let inner = Arc::new(Inner {
            state: Mutex::new(Directory::default()),
            faults: Faults::new(o.faults.clone(), ThrottleStyle::Graph),
            limits: Arc::new(RateWindows::new(o.requests_per_window, o.rate_window)),
            settings: Mutex::new(Settings {
                token_ttl: o.token_ttl,
                deprecation: None,
            }),
            log: Arc::new(RequestLog::default()),
            rules: Rules::new(super::super::GraphBodies, 0.0, 1),
            tenant_id: o.tenant_id,
            domains: o.domains,
            secret: 5,
        });
        (inner.clone(), EntraHandle::new(inner))
    }

    #[test]
    fn drift_and_seeding_go_around_the_counters() {
        let (_, h) = inner();
        let ada = h
            .seed_user("ada@example.com", json!({"employeeId": "E1"}))
            .expect("seed");
        assert!(
            h.seed_user("ADA@example.com", json!({})).is_err(),
            "UPNs are unique"
        );
        assert!(
            h.seed_user("x@elsewhere.com", json!({})).is_err(),
            "verified domains only"
        );
        h.create_user_by_hand("bob@example.com", "Bob")
            .expect("by hand");
        assert_eq!(
            h.user("bob@example.com")
                .and_then(|u| u.employee_id().map(str::to_string)),
            None
        );
        h.seed_group("Engineering", "eng", None).expect("group");
        assert_eq!(
            h.seed_members("engineering", &["ada@example.com", "bob@example.com"]),
            Ok(2)
        );
        assert!(!h.add_member("Engineering", &ada), "already one");
        assert!(h.remove_member("Engineering", "bob@example.com"));
        assert_eq!(h.members("Engineering"), ["ada@example.com"]);
        assert_eq!(h.member_of("ada@example.com"), ["Engineering"]);
        assert!(h.disable_user("ada@example.com", true));
        assert!(!h.user(&ada).expect("ada").account_enabled);
        assert!(h.update_user(&ada, json!({"userPrincipalName": "ada.l@example.com"})));
        assert!(
            !h.update_user(&ada, json!({"userPrincipalName": "bob@example.com"})),
            "taken"
        );
        assert_eq!(h.user("ada.l@example.com").map(|u| u.id), Some(ada.clone()));
        assert!(h.user("ada@example.com").is_none(), "the old UPN is free");
        assert_eq!((h.max_creates(), h.max_membership_adds()), (0, 0));
        assert!(h.delete_user(&ada) && h.members("Engineering").is_empty());
        h.register_app("c1", "secret", &["User.Read.All"]);
        let t = h.issue_token("c1").expect("token");
        assert!(h.token_is_live(&t));
        h.revoke_tokens();
        assert!(!h.token_is_live(&t) && h.issue_token("nobody").is_none());
    }
}
