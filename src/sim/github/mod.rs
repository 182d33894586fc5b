//! A stateful GitHub REST API simulator for one organisation: its members, invitations and
//! teams, behind personal access tokens and GitHub App installation tokens, on the wire
//! paths and shapes of GitHub's description (`tests/specs/github/api.github.com.json`) so
//! that Stoplight Prism in proxy mode reports no violations (`tests/sim_github.rs`).
//!
//! What it enforces, as GitHub documents or answers it:
//! - Auth (`auth.rs`): `Authorization: Bearer <token>` or `token <token>`. Personal access
//!   tokens ([`GitHubHandle::add_token`]): classic (`ghp_…`) carry OAuth scopes, answered
//!   with `X-OAuth-Scopes` and `X-Accepted-OAuth-Scopes`; fine-grained (`github_pat_…`)
//!   carry permissions (`members:read`, `members:write`), answered with
//!   `X-Accepted-GitHub-Permissions`. A token with an expiry sends
//!   `github-authentication-token-expiration: 2027-01-31 12:00:00 UTC` on every answer. A
//!   GitHub App signs an RS256 JWT (`iss` its id, number or string, or its client id; `iat`
//!   not in the future; `exp` in the future and at most 10 minutes away), checked against
//!   the key from [`GitHubHandle::register_app`], for `GET /app` and
//!   `POST /app/installations/{id}/access_tokens` (201, `ghs_…`, expiring after
//!   [`GitHubSimOptions::installation_token_ttl`], carrying the installation's permissions,
//!   narrowed by the request's). Refusals: 401 "Bad credentials" (unknown, revoked or
//!   expired token), 401 "Requires authentication" (none), 401 with GitHub's JWT messages,
//!   403 "Resource not accessible by integration" / "… by personal access token" (a
//!   permission missing), 403 "Must have admin rights to Organization." (a user token whose
//!   user is not an owner writing, or a classic token without the scope).
//! - Every answer carries `X-GitHub-Request-Id`, `X-GitHub-Api-Version-Selected` and the
//!   primary rate limit's `x-ratelimit-limit/-remaining/-used/-reset/-resource` (`envelope.rs`).
//!   `X-GitHub-Api-Version` must be a supported version (400, GitHub's message); a retired
//!   one is 410 Gone; a deprecated one answers with `Deprecation` and `Sunset` HTTP dates, as
//!   GitHub's API-versions page documents ([`GitHubHandle::deprecate_version`]).
//! - Rate limits: primary, per user (personal tokens) or per installation, 5,000 an hour by
//!   default, 60 an hour per address without valid credentials; spent: 403 (or 429,
//!   [`GitHubSimOptions::rate_limit_status`]) "API rate limit exceeded for …" with
//!   remaining 0. `GET /rate_limit` does not count. Secondary: points per minute (GET 1,
//!   writes 5; 900), content-creating requests per minute (POST and PUT; 80) and requests in
//!   flight (100); refused 403 "You have exceeded a secondary rate limit…", with
//!   `retry-after` or, per [`SecondaryRetryAfter`], without it and without
//!   `x-ratelimit-reset` (the adapter must then wait at least a minute). Injected bursts of
//!   the shared [`inject`] middleware look the same ([`ThrottleStyle::GitHub`]).
//! - Org membership (`members.rs`): `PUT /orgs/{org}/memberships/{username}` invites a
//!   GitHub user who is not a member (`state: pending`) or changes a member's role
//!   (`active`); invitations are their own state until the user accepts
//!   ([`GitHubHandle::accept_invitation`]) or they expire (7 days; then listed by
//!   `failed_invitations`). `POST /orgs/{org}/invitations` by `invitee_id` or `email`; 422
//!   "Validation Failed" inviting a member (`OrganizationInvitation`, `unprocessable`,
//!   "Invitee is already a part of this organization") or someone already invited (code
//!   `already_exists`; that entry's wording is ours). Removing a member removes their team
//!   memberships; a PUT for a pending invitee changes the invitation's role, never invites
//!   twice.
//! - Teams (`teams.rs`): create (the creating user becomes a maintainer, as at GitHub),
//!   read, list; `PUT …/teams/{slug}/memberships/{username}` for a non-member invites them
//!   to the organisation and answers `state: pending`; the team membership becomes active
//!   when they accept.
//! - Paging (`paging.rs`): `per_page` (default 30, at most 100) and `page`, with a `Link`
//!   header (`first`, `prev`, `next`, `last`). Pages are positions: a listing that changes
//!   while it is paged shifts under the reader, as GitHub's does.
//! - Eventual consistency: a new org or team membership is listed only after
//!   [`Faults::visibility_delay`]; single reads (membership, check) see the truth.
//! - Errors in GitHub's shape (`message`, `documentation_url`, `status` as a string;
//!   `errors[]` of `resource`, `code`, `field`, `message` for 422); malformed JSON is 400
//!   "Problems parsing JSON"; unknown routes and methods 404 "Not Found".
//!
//! Simplifications (deliberate): one organisation; Link URLs keep the request's path
//! (GitHub sometimes names the organisation by id there); lists are ordered by login
//! (members) or id; rate-limit windows are fixed (aligned to the window length), not rolling
//! from the first request; the CPU-time secondary limit and the hourly content limit are
//! not modelled; billing managers are never listed as members; team maintainers cannot
//! write unless they are owners; a JWT works on the `/app` routes, `GET /rate_limit` and
//! `GET /users/{username}` (403 "Resource not accessible by integration" elsewhere), an
//! installation or user token on the `/app` routes gets 401 "A JSON web token could not be
//! decoded"; `GET /user` serves user tokens only; an app's invitations name the owner
//! ([`ADMIN_LOGIN`]) as inviter, not the app's bot; the `X-Accepted-OAuth-Scopes` values
//! (`admin:org` to write memberships and invitations, `admin:org` or `write:org` for teams)
//! are our reading of GitHub's reference pages.
//!
//! Faults: [`inject`] (style [`ThrottleStyle::GitHub`]) and test-steered [`FailRule`]s
//! (malformed JSON, a 200 of the wrong shape, an HTML page, a body cut off, a lost
//! response, GitHub-shaped refusals via `BodyFault::reject`).

// Handlers bail out early with a ready GitHub error response; boxing it buys nothing.
#![allow(clippy::result_large_err)]

mod auth;
mod envelope;
mod handle;
mod members;
mod paging;
mod shapes;
mod teams;

pub use self::auth::TokenInfo;
pub use self::handle::{GitHubHandle, INSTALLATION_PERMISSIONS};
pub use self::shapes::{SECONDARY_MESSAGE, secondary_limit, server_error};
use super::fault::{FaultProfile, Faults, ThrottleStyle, inject};
pub use super::log::LoggedRequest;
use super::log::{RequestLog, record};
use super::rules::{self, Rules};
pub use super::rules::{BodyFault, FailRule};
use super::{SimServer, WriteCounts};
use axum::middleware::from_fn_with_state;
use axum::routing::{get, post, put};
use chrono::{DateTime, Utc};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

/// The API version GitHub selects when a request names none.
pub const DEFAULT_API_VERSION: &str = "2022-11-28";
/// The login of the organisation owner every simulator starts with.
pub const ADMIN_LOGIN: &str = "accessdesk-admin";
/// The user id of [`ADMIN_LOGIN`].
pub const ADMIN_ID: u64 = 9_000_001;

/// Whether a secondary-limit refusal says how long to wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecondaryRetryAfter {
    /// Always `retry-after` (seconds until the window ends).
    Always,
    /// Never: no `retry-after` and no `x-ratelimit-reset` (wait at least a minute).
    Never,
    /// Every other refusal, starting with one that carries it (GitHub: "sometimes").
    Alternate,
}

/// A deprecated API version: answers to requests using it carry `Deprecation` (when it
/// closes down) and `Sunset` (when it is removed), both HTTP dates.
#[derive(Debug, Clone, PartialEq)]
pub struct VersionDeprecation {
    pub version: String,
    pub deprecation: SystemTime,
    pub sunset: SystemTime,
}

#[derive(Debug, Clone)]
pub struct GitHubSimOptions {
    /// The organisation's login (`acme`); other names in `/orgs/{org}` are 404.
    pub org: String,
    pub org_id: u64,
    pub faults: FaultProfile,
    /// Primary limit per user or installation per window (GitHub: 5,000 an hour).
    pub primary_limit: u32,
    pub primary_window: Duration,
    /// Primary limit per client address without valid credentials (GitHub: 60 an hour).
    pub unauthenticated_limit: u32,
    /// Secondary limit: points per window (GitHub: 900 a minute; GET 1, writes 5).
    pub points_per_window: u32,
    /// Secondary limit: content-creating requests (POST, PUT) per window (GitHub: 80).
    pub content_per_window: u32,
    /// The secondary limits' window (GitHub: one minute). Tests use a second or two.
    pub secondary_window: Duration,
    /// Requests in flight at once per simulator (GitHub: 100); 0 is no limit.
    pub concurrency_limit: u32,
    pub secondary_retry_after: SecondaryRetryAfter,
    /// The status of a rate-limit refusal: 403 (GitHub's usual) or 429.
    pub rate_limit_status: u16,
    /// How long an installation access token lives (GitHub: one hour).
    pub installation_token_ttl: Duration,
    /// How long an invitation stays pending (GitHub: 7 days).
    pub invitation_ttl: Duration,
    /// The API versions accepted in `X-GitHub-Api-Version`.
    pub api_versions: Vec<String>,
    pub deprecated_versions: Vec<VersionDeprecation>,
    /// Chance that a request is carried out but its response is lost (connection reset).
    pub lost_response_rate: f64,
    pub seed: u64,
    /// Every well-formed username (letters, digits, single inner hyphens, at most 39) is
    /// a GitHub user the moment someone is invited by it: for the demo, whose company
    /// all have GitHub accounts. Off by default (an unknown user is 404, as on GitHub).
    pub users_on_demand: bool,
    /// Invitees accept their invitation this long after it was sent (the demo's people
    /// do); None (the default) leaves every invitation pending until a test accepts it.
    pub accept_invitations_after: Option<Duration>,
}

impl Default for GitHubSimOptions {
    fn default() -> Self {
        GitHubSimOptions {
            org: "acme".into(),
            org_id: 7_000_001,
            faults: FaultProfile::none(),
            primary_limit: 5000,
            primary_window: Duration::from_secs(3600),
            unauthenticated_limit: 60,
            points_per_window: 900,
            content_per_window: 80,
            secondary_window: Duration::from_secs(60),
            concurrency_limit: 100,
            secondary_retry_after: SecondaryRetryAfter::Alternate,
            rate_limit_status: 403,
            installation_token_ttl: Duration::from_secs(3600),
            invitation_ttl: Duration::from_secs(7 * 24 * 3600),
            api_versions: vec![DEFAULT_API_VERSION.into(), "2026-03-10".into()],
            deprecated_versions: Vec::new(),
            lost_response_rate: 0.0,
            seed: 7,
            users_on_demand: false,
            accept_invitations_after: None,
        }
    }
}

/// A role in the organisation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrgRole {
    Admin,
    Member,
    BillingManager,
}

impl OrgRole {
    /// As a membership's `role`.
    pub fn as_str(self) -> &'static str {
        match self {
            OrgRole::Admin => "admin",
            OrgRole::Member => "member",
            OrgRole::BillingManager => "billing_manager",
        }
    }

    /// As an invitation's `role`.
    pub fn invitation_role(self) -> &'static str {
        match self {
            OrgRole::Member => "direct_member",
            other => other.as_str(),
        }
    }

    fn from_invitation_role(role: &str) -> Option<OrgRole> {
        match role {
            "admin" => Some(OrgRole::Admin),
            "direct_member" => Some(OrgRole::Member),
            "billing_manager" => Some(OrgRole::BillingManager),
            _ => None,
        }
    }
}

/// A role in a team.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TeamRole {
    Member,
    Maintainer,
}

impl TeamRole {
    pub fn as_str(self) -> &'static str {
        match self {
            TeamRole::Member => "member",
            TeamRole::Maintainer => "maintainer",
        }
    }

    fn parse(s: &str) -> Option<TeamRole> {
        match s {
            "member" => Some(TeamRole::Member),
            "maintainer" => Some(TeamRole::Maintainer),
            _ => None,
        }
    }
}

/// A GitHub user (global, not only the organisation's).
#[derive(Debug, Clone, PartialEq)]
pub struct SimUser {
    pub login: String,
    pub id: u64,
    /// The public e-mail, if the user shows one.
    pub email: Option<String>,
    pub name: Option<String>,
    /// Whether two-factor authentication is on (`filter=2fa_disabled` lists the others).
    pub two_factor: bool,
    pub created: DateTime<Utc>,
}

/// An organisation invitation, pending or failed (expired).
#[derive(Debug, Clone, PartialEq)]
pub struct SimInvitation {
    pub id: u64,
    /// The invitee's login, when invited as a GitHub user.
    pub login: Option<String>,
    /// The e-mail invited (or the user's public one).
    pub email: Option<String>,
    pub role: OrgRole,
    pub team_ids: Vec<u64>,
    pub inviter: String,
    pub created: DateTime<Utc>,
    pub failed_at: Option<DateTime<Utc>>,
    pub failed_reason: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SimTeam {
    pub id: u64,
    pub slug: String,
    pub name: String,
    pub description: Option<String>,
    /// `secret` or `closed`.
    pub privacy: String,
    pub notification_setting: String,
    pub permission: String,
    pub parent: Option<u64>,
    pub created: DateTime<Utc>,
    pub updated: DateTime<Utc>,
}

/// One team membership as the handle reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimTeamMember {
    pub login: String,
    pub role: TeamRole,
    /// Waiting for the user to accept an organisation invitation.
    pub pending: bool,
}

#[derive(Debug, Clone)]
struct Member {
    role: OrgRole,
    visible_at: Instant,
}

#[derive(Debug, Clone)]
struct TeamMember {
    role: TeamRole,
    pending: bool,
    visible_at: Instant,
}

/// The group name org memberships are counted under in [`WriteCounts`] (no team slug is
/// empty).
const ORG_GROUP: &str = "";

#[derive(Debug, Default)]
struct Org {
    next_id: u64,
    /// Every well-formed login names a GitHub user ([`GitHubSimOptions::users_on_demand`]).
    users_on_demand: bool,
    /// [`GitHubSimOptions::accept_invitations_after`].
    accept_after: Option<chrono::Duration>,
    /// Lower-cased login -> user.
    users: BTreeMap<String, SimUser>,
    /// Lower-cased login -> membership.
    members: BTreeMap<String, Member>,
    invitations: BTreeMap<u64, SimInvitation>,
    failed: BTreeMap<u64, SimInvitation>,
    teams: BTreeMap<u64, SimTeam>,
    /// (team id, lower-cased login) -> membership.
    team_members: BTreeMap<(u64, String), TeamMember>,
    tokens: HashMap<String, auth::UserToken>,
    apps: HashMap<u64, auth::App>,
    installations: BTreeMap<u64, auth::Installation>,
    installation_tokens: HashMap<String, auth::InstallationToken>,
    counts: WriteCounts,
    token_requests: u64,
    invitation_ttl: Duration,
}

impl Org {
    /// With [`GitHubSimOptions::users_on_demand`], make `login` a user if it is a
    /// well-formed GitHub username and nobody has it yet.
    fn user_on_demand(&mut self, login: &str) {
        let well_formed = !login.is_empty()
            && login.len() <= 39
            && login.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            && !login.starts_with('-')
            && !login.ends_with('-')
            && !login.contains("--");
        if !self.users_on_demand || !well_formed || self.user(login).is_some() {
            return;
        }
        let id = self.next_id();
        self.users.insert(
            login.to_lowercase(),
            SimUser {
                login: login.to_string(),
                id,
                email: None,
                name: None,
                two_factor: true,
                created: Utc::now(),
            },
        );
    }

    fn next_id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    fn user(&self, login: &str) -> Option<&SimUser> {
        self.users.get(&login.to_lowercase())
    }

    fn user_by_id(&self, id: u64) -> Option<&SimUser> {
        self.users.values().find(|u| u.id == id)
    }

    fn team_by_slug(&self, slug: &str) -> Option<&SimTeam> {
        self.teams
            .values()
            .find(|t| t.slug.eq_ignore_ascii_case(slug))
    }

    /// The pending invitation of this login (or of this e-mail, case-insensitively).
    fn invitation_for(&self, login: Option<&str>, email: Option<&str>) -> Option<u64> {
        self.invitations
            .values()
            .find(|i| {
                let by_login = login.is_some_and(|l| {
                    i.login
                        .as_deref()
                        .is_some_and(|x| x.eq_ignore_ascii_case(l))
                });
                let by_email = email.is_some_and(|e| {
                    i.email
                        .as_deref()
                        .is_some_and(|x| x.eq_ignore_ascii_case(e))
                });
                by_login || by_email
            })
            .map(|i| i.id)
    }

    /// Move invitations older than the TTL to the failed list.
    fn sweep(&mut self) {
        if let Some(after) = self.accept_after {
            let now = Utc::now();
            let due: Vec<(u64, String)> = self
                .invitations
                .values()
                .filter(|i| i.created + after <= now)
                .filter_map(|i| i.login.clone().map(|l| (i.id, l)))
                .collect();
            for (id, login) in due {
                let _ = self.accept(id, &login, Instant::now());
            }
        }
        let ttl = chrono::Duration::from_std(self.invitation_ttl).unwrap_or(chrono::Duration::MAX);
        let now = Utc::now();
        let expired: Vec<u64> = self
            .invitations
            .values()
            .filter(|i| i.created.checked_add_signed(ttl).is_some_and(|t| t <= now))
            .map(|i| i.id)
            .collect();
        for id in expired {
            self.fail_invitation(id, "Invitation expired");
        }
    }

    fn fail_invitation(&mut self, id: u64, reason: &str) -> bool {
        let Some(mut inv) = self.invitations.remove(&id) else {
            return false;
        };
        self.drop_pending_teams(&inv);
        inv.failed_at = Some(Utc::now());
        inv.failed_reason = Some(reason.to_string());
        self.failed.insert(id, inv);
        true
    }

    fn cancel_invitation(&mut self, id: u64) -> bool {
        match self.invitations.remove(&id) {
            Some(inv) => {
                self.drop_pending_teams(&inv);
                true
            }
            None => false,
        }
    }

    fn drop_pending_teams(&mut self, inv: &SimInvitation) {
        if let Some(login) = &inv.login {
            let lc = login.to_lowercase();
            self.team_members
                .retain(|(_, l), m| !(m.pending && *l == lc));
        }
    }

    /// The user accepts invitation `id` as `login`: a member with the invitation's role,
    /// in its teams, visible to listings at `visible_at`.
    fn accept(&mut self, id: u64, login: &str, visible_at: Instant) -> Result<(), String> {
        let lc = login.to_lowercase();
        if !self.users.contains_key(&lc) {
            return Err(format!("no GitHub user {login}"));
        }
        let Some(inv) = self.invitations.remove(&id) else {
            return Err(format!("no pending invitation {id}"));
        };
        self.members.insert(
            lc.clone(),
            Member {
                role: inv.role,
                visible_at,
            },
        );
        self.counts.added(ORG_GROUP, &lc);
        for m in self
            .team_members
            .iter_mut()
            .filter(|((_, l), m)| *l == lc && m.pending)
            .map(|(_, m)| m)
        {
            m.pending = false;
            m.visible_at = visible_at;
        }
        for team in inv.team_ids {
            if self.teams.contains_key(&team) {
                self.team_members
                    .entry((team, lc.clone()))
                    .or_insert(TeamMember {
                        role: TeamRole::Member,
                        pending: false,
                        visible_at,
                    });
            }
        }
        Ok(())
    }

    /// Remove a member and their team memberships. Whether they were a member.
    fn remove_member(&mut self, login: &str) -> bool {
        let lc = login.to_lowercase();
        self.team_members.retain(|(_, l), _| *l != lc);
        self.members.remove(&lc).is_some()
    }
}

/// What can change at run time besides the organisation.
#[derive(Debug)]
struct Settings {
    installation_token_ttl: Duration,
    api_versions: Vec<String>,
    retired_versions: Vec<String>,
    deprecated_versions: Vec<VersionDeprecation>,
    rate_limit_status: u16,
    secondary_retry_after: SecondaryRetryAfter,
}

struct Inner {
    state: Mutex<Org>,
    faults: Arc<Faults>,
    limits: envelope::Limits,
    settings: Mutex<Settings>,
    log: Arc<RequestLog>,
    rules: Arc<Rules>,
    org: String,
    org_id: u64,
}

impl Inner {
    /// The organisation, with expired invitations moved to the failed list.
    fn lock(&self) -> MutexGuard<'_, Org> {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        s.sweep();
        s
    }

    fn settings(&self) -> MutexGuard<'_, Settings> {
        self.settings.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// When a write made now becomes visible to listings.
    fn visible_at(&self) -> Instant {
        Instant::now() + self.faults.visibility_delay()
    }
}

/// Start the simulator on 127.0.0.1 (ephemeral port).
pub async fn spawn(opts: GitHubSimOptions) -> std::io::Result<(SimServer, GitHubHandle)> {
    let faults = Faults::new(opts.faults.clone(), ThrottleStyle::GitHub);
    let mut state = Org {
        next_id: 1000,
        users_on_demand: opts.users_on_demand,
        accept_after: opts
            .accept_invitations_after
            .and_then(|d| chrono::Duration::from_std(d).ok()),
        invitation_ttl: opts.invitation_ttl,
        ..Default::default()
    };
    let now = Utc::now();
    state.users.insert(
        ADMIN_LOGIN.to_string(),
        SimUser {
            login: ADMIN_LOGIN.into(),
            id: ADMIN_ID,
            email: None,
            name: Some("Accessdesk Admin".into()),
            two_factor: true,
            created: now,
        },
    );
    state.members.insert(
        ADMIN_LOGIN.to_string(),
        Member {
            role: OrgRole::Admin,
            visible_at: Instant::now(),
        },
    );
    let inner = Arc::new(Inner {
        state: Mutex::new(state),
        faults: faults.clone(),
        limits: envelope::Limits::new(&opts),
        settings: Mutex::new(Settings {
            installation_token_ttl: opts.installation_token_ttl,
            api_versions: opts.api_versions.clone(),
            retired_versions: Vec::new(),
            deprecated_versions: opts.deprecated_versions.clone(),
            rate_limit_status: opts.rate_limit_status,
            secondary_retry_after: opts.secondary_retry_after,
        }),
        log: Arc::new(RequestLog::default()),
        rules: Rules::new(
            shapes::GitHubBodies,
            opts.lost_response_rate,
            opts.seed ^ 0x617b,
        ),
        org: opts.org.clone(),
        org_id: opts.org_id,
    });
    let app = router(inner.clone(), faults);
    let server = SimServer::spawn(app).await?;
    Ok((server, GitHubHandle { inner }))
}

fn router(inner: Arc<Inner>, faults: Arc<Faults>) -> axum::Router {
    axum::Router::new()
        .route("/app", get(auth::get_app))
        .route(
            "/app/installations/{installation_id}/access_tokens",
            post(auth::create_installation_token),
        )
        .route("/rate_limit", get(envelope::rate_limit))
        .route("/user", get(members::authenticated_user))
        .route("/users/{username}", get(members::get_user))
        .route("/orgs/{org}/members", get(members::list_members))
        .route(
            "/orgs/{org}/members/{username}",
            get(members::check_member).delete(members::remove_member),
        )
        .route(
            "/orgs/{org}/memberships/{username}",
            get(members::get_membership)
                .put(members::set_membership)
                .delete(members::remove_membership),
        )
        .route(
            "/orgs/{org}/invitations",
            get(members::list_invitations).post(members::create_invitation),
        )
        .route(
            "/orgs/{org}/invitations/{invitation_id}",
            axum::routing::delete(members::cancel_invitation),
        )
        .route(
            "/orgs/{org}/failed_invitations",
            get(members::failed_invitations),
        )
        .route(
            "/orgs/{org}/teams",
            get(teams::list_teams).post(teams::create_team),
        )
        .route("/orgs/{org}/teams/{team_slug}", get(teams::get_team))
        .route(
            "/orgs/{org}/teams/{team_slug}/members",
            get(teams::list_team_members),
        )
        .route(
            "/orgs/{org}/teams/{team_slug}/invitations",
            get(teams::list_team_invitations),
        )
        .route(
            "/orgs/{org}/teams/{team_slug}/memberships/{username}",
            put(teams::set_team_membership)
                .get(teams::get_team_membership)
                .delete(teams::remove_team_membership),
        )
        .fallback(shapes::not_found_route)
        .method_not_allowed_fallback(shapes::not_found_route)
        .layer(from_fn_with_state(inner.rules.clone(), rules::apply))
        .layer(from_fn_with_state(faults, inject))
        .layer(from_fn_with_state(inner.clone(), envelope::envelope))
        .layer(from_fn_with_state(inner.log.clone(), record))
        .with_state(inner)
}
