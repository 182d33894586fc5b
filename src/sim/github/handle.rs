//! [`GitHubHandle`]: seeds, steers and inspects a running simulator.

use super::auth::{App, Installation, TokenInfo, UserToken};
use super::members::{Invite, invite};
use super::teams::new_team;
use super::{
    Inner, LoggedRequest, Member, ORG_GROUP, OrgRole, SecondaryRetryAfter, SimInvitation, SimTeam,
    SimTeamMember, SimUser, TeamMember, TeamRole, VersionDeprecation,
};
use crate::sim::fault::Faults;
use crate::sim::ratelimit::ConcurrencyLimit;
use crate::sim::rules::FailRule;
use chrono::Utc;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

/// Steers and inspects a running simulator (tests, the demo).
#[derive(Clone)]
pub struct GitHubHandle {
    pub(super) inner: Arc<Inner>,
}

impl std::fmt::Debug for GitHubHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("GitHubHandle")
    }
}

/// The default permissions of an app installation.
pub const INSTALLATION_PERMISSIONS: &[(&str, &str)] = &[
    ("members", "write"),
    ("organization_administration", "read"),
];

impl GitHubHandle {
    /// The organisation's login.
    pub fn org(&self) -> &str {
        &self.inner.org
    }

    pub fn faults(&self) -> Arc<Faults> {
        self.inner.faults.clone()
    }

    /// The cap on requests in flight ([`ConcurrencyLimit::set_limit`]; 0 is none).
    pub fn concurrency(&self) -> Arc<ConcurrencyLimit> {
        self.inner.limits.concurrency.clone()
    }

    /// The primary limit per user or installation, effective at once.
    pub fn set_primary_limit(&self, limit: u32) {
        self.inner.limits.set_primary_limit(limit);
    }

    /// The secondary limits per window: points (GET 1, writes 5) and content-creating
    /// requests.
    pub fn set_secondary_limits(&self, points: u32, content: u32) {
        self.inner.limits.points.set_limit(None, points);
        self.inner.limits.content.set_limit(None, content);
    }

    /// 403 (GitHub's usual) or 429 for rate-limit refusals.
    pub fn set_rate_limit_status(&self, status: u16) {
        self.inner.settings().rate_limit_status = status;
    }

    pub fn set_secondary_retry_after(&self, mode: SecondaryRetryAfter) {
        self.inner.settings().secondary_retry_after = mode;
    }

    /// Requests refused by the (primary, secondary) limits so far.
    pub fn refused(&self) -> (u64, u64) {
        let l = &self.inner.limits;
        (
            l.primary.refused() + l.unauthenticated.refused(),
            l.points.refused() + l.content.refused() + l.concurrency.refused(),
        )
    }

    /// Accept a personal access token acting as `info.login` (a seeded user).
    pub fn add_token(&self, token: &str, info: TokenInfo) {
        self.inner.lock().tokens.insert(
            token.to_string(),
            UserToken {
                info,
                revoked: false,
            },
        );
    }

    /// Revoke a personal access token or an installation token.
    pub fn revoke_token(&self, token: &str) {
        let mut s = self.inner.lock();
        if let Some(t) = s.tokens.get_mut(token) {
            t.revoked = true;
        }
        if let Some(t) = s.installation_tokens.get_mut(token) {
            t.revoked = true;
        }
    }

    /// Revoke every installation token issued so far.
    pub fn revoke_installation_tokens(&self) {
        for t in self.inner.lock().installation_tokens.values_mut() {
            t.revoked = true;
        }
    }

    /// Register a GitHub App by its id and public key, installed on the organisation with
    /// [`INSTALLATION_PERMISSIONS`]. Returns the installation id. Its client id is
    /// `Iv23` followed by the app id.
    pub fn register_app(&self, app_id: u64, public_key_pem: &str) -> u64 {
        let mut s = self.inner.lock();
        s.apps.insert(
            app_id,
            App {
                public_key_pem: public_key_pem.to_string(),
                client_id: format!("Iv23{app_id:012}"),
                slug: format!("accessdesk-{app_id}"),
            },
        );
        let installation_id = app_id.saturating_mul(100).saturating_add(1);
        s.installations.insert(
            installation_id,
            Installation {
                app_id,
                permissions: to_map(INSTALLATION_PERMISSIONS),
            },
        );
        installation_id
    }

    /// Change what an installation may do (new tokens only).
    pub fn set_installation_permissions(&self, installation_id: u64, permissions: &[(&str, &str)]) {
        if let Some(i) = self.inner.lock().installations.get_mut(&installation_id) {
            i.permissions = to_map(permissions);
        }
    }

    pub fn set_installation_token_ttl(&self, ttl: Duration) {
        self.inner.settings().installation_token_ttl = ttl;
    }

    /// Every installation token issued so far (for leak tests).
    pub fn issued_installation_tokens(&self) -> Vec<String> {
        self.inner
            .lock()
            .installation_tokens
            .keys()
            .cloned()
            .collect()
    }

    /// How many requests reached the installation token endpoint.
    pub fn token_requests(&self) -> u64 {
        self.inner.lock().token_requests
    }

    /// Answers to requests using `version` carry `Deprecation` and `Sunset`.
    pub fn deprecate_version(&self, version: &str, deprecation: SystemTime, sunset: SystemTime) {
        let mut s = self.inner.settings();
        s.deprecated_versions.retain(|d| d.version != version);
        s.deprecated_versions.push(VersionDeprecation {
            version: version.to_string(),
            deprecation,
            sunset,
        });
    }

    /// Requests naming `version` get 410 Gone from now on.
    pub fn retire_version(&self, version: &str) {
        let mut s = self.inner.settings();
        s.api_versions.retain(|v| v != version);
        s.retired_versions.push(version.to_string());
    }

    /// Add a GitHub user (not a member of anything).
    pub fn seed_user(&self, login: &str, id: u64, email: Option<&str>) -> Result<(), String> {
        let mut s = self.inner.lock();
        if s.user(login).is_some() || s.user_by_id(id).is_some() {
            return Err(format!("a user {login} or with id {id} exists"));
        }
        s.users.insert(
            login.to_lowercase(),
            SimUser {
                login: login.to_string(),
                id,
                email: email.map(str::to_string),
                name: None,
                two_factor: true,
                created: Utc::now(),
            },
        );
        Ok(())
    }

    pub fn set_two_factor(&self, login: &str, on: bool) {
        if let Some(u) = self.inner.lock().users.get_mut(&login.to_lowercase()) {
            u.two_factor = on;
        }
    }

    pub fn user(&self, login: &str) -> Option<SimUser> {
        self.inner.lock().user(login).cloned()
    }

    /// Make a seeded user an active member at once (seeding, or a change behind the
    /// adapter's back); a pending invitation of theirs goes. Not counted as an add.
    pub fn add_member(&self, login: &str, role: OrgRole) -> Result<(), String> {
        let mut s = self.inner.lock();
        let Some(lc) = s.user(login).map(|u| u.login.to_lowercase()) else {
            return Err(format!("no GitHub user {login}"));
        };
        if let Some(id) = s.invitation_for(Some(login), None) {
            s.cancel_invitation(id);
        }
        s.members.insert(
            lc,
            Member {
                role,
                visible_at: Instant::now(),
            },
        );
        Ok(())
    }

    /// Remove a member (and their team memberships) behind the adapter's back.
    pub fn remove_member(&self, login: &str) -> bool {
        self.inner.lock().remove_member(login)
    }

    /// A pending invitation of a seeded user (by login) or of an e-mail (with `@`), as if
    /// sent by [`super::ADMIN_LOGIN`]. Not counted as a create.
    pub fn seed_invitation(&self, login_or_email: &str, role: OrgRole) -> Result<u64, String> {
        let mut s = self.inner.lock();
        let email = login_or_email.contains('@');
        let login = (!email).then_some(login_or_email);
        if login.is_some_and(|l| s.user(l).is_none()) {
            return Err(format!("no GitHub user {login_or_email}"));
        }
        if s.invitation_for(login, email.then_some(login_or_email))
            .is_some()
        {
            return Err(format!("{login_or_email} is already invited"));
        }
        let i = Invite {
            login,
            email: email.then_some(login_or_email),
            role,
            teams: &[],
            inviter: super::ADMIN_LOGIN,
            counted: false,
        };
        Ok(invite(&mut s, i))
    }

    /// The user accepts their pending invitation.
    pub fn accept_invitation(&self, login: &str) -> Result<(), String> {
        let visible_at = self.inner.visible_at();
        let mut s = self.inner.lock();
        let id = s
            .invitation_for(Some(login), None)
            .ok_or_else(|| format!("{login} has no pending invitation"))?;
        s.accept(id, login, visible_at)
    }

    /// The invitation sent to `email` is accepted by the GitHub user `login`.
    pub fn accept_invitation_as(&self, email: &str, login: &str) -> Result<(), String> {
        let visible_at = self.inner.visible_at();
        let mut s = self.inner.lock();
        let id = s
            .invitation_for(None, Some(email))
            .ok_or_else(|| format!("{email} has no pending invitation"))?;
        s.accept(id, login, visible_at)
    }

    /// Expire a pending invitation now (GitHub: after 7 days); it moves to the failed list.
    pub fn expire_invitation(&self, id: u64) -> Result<(), String> {
        if self.inner.lock().fail_invitation(id, "Invitation expired") {
            Ok(())
        } else {
            Err(format!("no pending invitation {id}"))
        }
    }

    /// Create a (secret) team directly.
    pub fn seed_team(&self, name: &str) -> Result<SimTeam, String> {
        let mut s = self.inner.lock();
        let id = new_team(&mut s, name, None, "secret", None)
            .map_err(|_| format!("a team named {name} exists"))?;
        s.teams.get(&id).cloned().ok_or_else(|| "lost".into())
    }

    /// Put a member into a team at once (seeding, or behind the adapter's back).
    pub fn add_team_member(&self, slug: &str, login: &str, role: TeamRole) -> Result<(), String> {
        let mut s = self.inner.lock();
        let team = s
            .team_by_slug(slug)
            .map(|t| t.id)
            .ok_or(format!("no team {slug}"))?;
        let lc = login.to_lowercase();
        if !s.members.contains_key(&lc) {
            return Err(format!("{login} is not a member of the organisation"));
        }
        s.team_members.insert(
            (team, lc),
            TeamMember {
                role,
                pending: false,
                visible_at: Instant::now(),
            },
        );
        Ok(())
    }

    pub fn remove_team_member(&self, slug: &str, login: &str) -> bool {
        let mut s = self.inner.lock();
        let Some(team) = s.team_by_slug(slug).map(|t| t.id) else {
            return false;
        };
        s.team_members
            .remove(&(team, login.to_lowercase()))
            .is_some()
    }

    /// Every active member and role (the truth, visible or not yet).
    pub fn members(&self) -> Vec<(String, OrgRole)> {
        let s = self.inner.lock();
        s.members
            .iter()
            .filter_map(|(lc, m)| s.users.get(lc).map(|u| (u.login.clone(), m.role)))
            .collect()
    }

    pub fn member_role(&self, login: &str) -> Option<OrgRole> {
        self.inner
            .lock()
            .members
            .get(&login.to_lowercase())
            .map(|m| m.role)
    }

    /// Pending invitations, oldest first.
    pub fn invitations(&self) -> Vec<SimInvitation> {
        self.inner.lock().invitations.values().cloned().collect()
    }

    /// Expired invitations.
    pub fn failed_invitations(&self) -> Vec<SimInvitation> {
        self.inner.lock().failed.values().cloned().collect()
    }

    pub fn teams(&self) -> Vec<SimTeam> {
        self.inner.lock().teams.values().cloned().collect()
    }

    /// A team's memberships, pending ones included.
    pub fn team_members(&self, slug: &str) -> Vec<SimTeamMember> {
        let s = self.inner.lock();
        let Some(team) = s.team_by_slug(slug).map(|t| t.id) else {
            return Vec::new();
        };
        s.team_members
            .iter()
            .filter(|((t, _), _)| *t == team)
            .filter_map(|((_, lc), m)| {
                s.users.get(lc).map(|u| SimTeamMember {
                    login: u.login.clone(),
                    role: m.role,
                    pending: m.pending,
                })
            })
            .collect()
    }

    /// How many invitations were sent to this login or e-mail (more than 1: invited twice).
    pub fn invitations_for(&self, login_or_email: &str) -> u32 {
        self.inner.lock().counts.creates_for(login_or_email)
    }

    pub fn max_invitations(&self) -> u32 {
        self.inner.lock().counts.max_creates()
    }

    /// How often this user became an org member by accepting an invitation.
    pub fn org_membership_adds(&self, login: &str) -> u32 {
        self.inner
            .lock()
            .counts
            .adds_for(ORG_GROUP, &login.to_lowercase())
    }

    /// How often this user was added to the team (a PUT for a member adds nothing).
    pub fn team_membership_adds(&self, slug: &str, login: &str) -> u32 {
        self.inner
            .lock()
            .counts
            .adds_for(slug, &login.to_lowercase())
    }

    pub fn max_membership_adds(&self) -> u32 {
        self.inner.lock().counts.max_adds()
    }

    pub fn log(&self) -> Vec<LoggedRequest> {
        self.inner.log.entries()
    }

    pub fn count(&self, f: impl Fn(&LoggedRequest) -> bool) -> usize {
        self.inner.log.count(f)
    }

    pub fn clear_log(&self) {
        self.inner.log.clear();
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
}

fn to_map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::super::auth::{JWT_UNDECODABLE, verify_app_jwt};
    use super::super::{GitHubSimOptions, spawn};
    use super::*;
    use axum::body::to_bytes;
    use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
    use serde_json::{Value, json};

    const PRIVATE: &str = include_str!("../../../tests/fixtures/okta/test-rsa-private.pem");
    const PUBLIC: &str = include_str!("../../../tests/fixtures/okta/test-rsa-public.pem");
    const OTHER: &str = include_str!("../../../tests/fixtures/okta/test-rsa-other-private.pem");

    fn now() -> i64 {
        Utc::now().timestamp()
    }

    fn jwt(key: &str, alg: Algorithm, claims: Value) -> String {
        let key = match alg {
            Algorithm::HS256 => EncodingKey::from_secret(b"secret"),
            _ => EncodingKey::from_rsa_pem(key.as_bytes()).expect("key"),
        };
        encode(&Header::new(alg), &claims, &key).expect("jwt")
    }

    async fn message(r: axum::response::Response) -> (u16, String) {
        let status = r.status().as_u16();
        let body = to_bytes(r.into_body(), 1 << 20).await.expect("body");
        let v: Value = serde_json::from_slice(&body).expect("json");
        (status, v["message"].as_str().unwrap_or("").to_string())
    }

    #[tokio::test]
    async fn app_jwts_are_checked_as_github_does() {
        let (_server, sim) = spawn(GitHubSimOptions::default()).await.expect("sim");
        sim.register_app(4242, PUBLIC);
        let inner = &sim.inner;
        let ok = |claims: Value| verify_app_jwt(inner, &jwt(PRIVATE, Algorithm::RS256, claims));
        let t = now();
        assert_eq!(
            ok(json!({"iss": 4242, "iat": t - 60, "exp": t + 540})).ok(),
            Some(4242)
        );
        assert_eq!(
            ok(json!({"iss": "4242", "iat": t - 60, "exp": t + 600})).ok(),
            Some(4242)
        );
        assert_eq!(
            ok(json!({"iss": "Iv23000000004242", "iat": t, "exp": t + 60})).ok(),
            Some(4242),
            "the client id works too"
        );
        let cases = [
            (
                json!({"iss": 4242, "iat": t, "exp": t + 700}),
                "too far in the future",
            ),
            (
                json!({"iss": 4242, "iat": t - 700, "exp": t - 5}),
                "must be a numeric value",
            ),
            (
                json!({"iss": 4242, "iat": t - 60}),
                "must be a numeric value",
            ),
            (
                json!({"iss": 4242, "iat": t + 120, "exp": t + 300}),
                "'Issued at' claim",
            ),
            (
                json!({"iss": 4242, "iat": "now", "exp": t + 300}),
                "'Issued at' claim",
            ),
            (json!({"iss": 1, "iat": t, "exp": t + 300}), JWT_UNDECODABLE),
        ];
        for (claims, want) in cases {
            let r = ok(claims.clone()).expect_err("refused");
            let (status, m) = message(r).await;
            assert_eq!(status, 401, "{claims}");
            assert!(m.contains(want), "{claims}: {m}");
        }
        let claims = json!({"iss": 4242, "iat": t, "exp": t + 300});
        for bad in [
            jwt(OTHER, Algorithm::RS256, claims.clone()),
            jwt("", Algorithm::HS256, claims.clone()),
            "a.b.c".to_string(),
        ] {
            let (status, m) = message(verify_app_jwt(inner, &bad).expect_err("bad")).await;
            assert_eq!((status, m.as_str()), (401, JWT_UNDECODABLE));
        }
    }

    #[tokio::test]
    async fn invitations_accept_and_expire_with_their_teams() {
        let (_server, sim) = spawn(GitHubSimOptions::default()).await.expect("sim");
        sim.seed_user("mona", 1, Some("mona@example.com")).unwrap();
        sim.seed_user("hubot", 2, None).unwrap();
        let team = sim.seed_team("Platform SRE").unwrap();
        assert_eq!(team.slug, "platform-sre");
        let id = sim.seed_invitation("mona", OrgRole::Admin).unwrap();
        assert!(
            sim.seed_invitation("mona", OrgRole::Member).is_err(),
            "one pending invitation"
        );
        assert_eq!(sim.invitations_for("mona"), 0, "seeding is not counted");
        sim.accept_invitation("mona").unwrap();
        assert_eq!(sim.member_role("mona"), Some(OrgRole::Admin));
        assert_eq!(sim.org_membership_adds("mona"), 1);
        assert!(
            sim.accept_invitation("mona").is_err(),
            "nothing left to accept"
        );
        let id2 = sim
            .seed_invitation("hubot@example.com", OrgRole::Member)
            .unwrap();
        assert_ne!(id, id2);
        sim.expire_invitation(id2).unwrap();
        assert!(sim.invitations().is_empty());
        let failed = sim.failed_invitations();
        assert_eq!(
            failed[0].failed_reason.as_deref(),
            Some("Invitation expired")
        );
        assert!(
            sim.accept_invitation_as("hubot@example.com", "hubot")
                .is_err()
        );
        sim.add_team_member("platform-sre", "mona", TeamRole::Maintainer)
            .unwrap();
        assert!(
            sim.add_team_member("platform-sre", "hubot", TeamRole::Member)
                .is_err()
        );
        assert!(sim.remove_member("mona"));
        assert!(
            sim.team_members("platform-sre").is_empty(),
            "leaving the org leaves its teams"
        );
    }
}
