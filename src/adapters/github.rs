//! The GitHub adapter: one organisation's membership and its teams over the REST API
//! (`X-GitHub-Api-Version: 2022-11-28`), with a personal access token or as a GitHub App.
//!
//! What accessdesk's operations mean here. GitHub accounts belong to their people, not to
//! the organisation: the login is the person's GitHub username (the login template must
//! yield it), and "creating an account" is inviting that user into the organisation.
//! - **create**: first `GET /orgs/{org}/memberships/{user}`: someone who is already a
//!   member or invited is "already exists" (Conflict), and the engine's identity rules
//!   decide (GitHub holds no HR id, so only accessdesk's record of inviting proves it);
//!   otherwise `PUT` the membership (role `member`): GitHub sends an invitation and the
//!   account is **pending**, its own state (`active: false`, attribute `state`), until the
//!   user accepts.
//! - **update**: nothing accessdesk manages lives on a GitHub account; it is read back.
//! - **deactivate**: `DELETE /orgs/{org}/memberships/{user}` removes the member or cancels
//!   the invitation (GitHub has no suspended state for organisation members); gone is done.
//!   **reactivate** invites them again.
//! - **grant / revoke** a `team` (by slug): `PUT`/`DELETE
//!   /orgs/{org}/teams/{slug}/memberships/{user}`.
//! - **observe**: `/orgs/{org}/members` then `/orgs/{org}/invitations` (Link paging),
//!   `/orgs/{org}/teams` and each team's members then its invitations (a team membership
//!   of someone still invited is pending at GitHub, and counted as held).
//!
//! Auth: by default the credential is a token (a fine-grained PAT with the organisation's
//! Members permission, or a classic one with `admin:org`). With `app_id` and
//! `installation_id` in settings the credential is the App's private key (PEM): each hour
//! a JWT signed by it is exchanged for an installation token asking only for
//! `members: write` ([`super::auth::github_app`]); a 401 fetches a new one.
//!
//! Limits: the primary limit's `x-ratelimit-*` headers drive the limiter; a 403 or 429
//! that says "rate limit" is a rate limit, and a secondary-limit refusal without
//! `retry-after` or reset waits a minute, as GitHub asks. The token's expiry comes from
//! `github-authentication-token-expiration` (credential hygiene), its scopes from
//! `X-OAuth-Scopes`; a `Deprecation`/`Sunset` on the pinned API version reaches the
//! API-version watch.

use super::auth::github_app::{AppInstallation, permission_scopes};
use super::auth::jwt::Signer;
use super::auth::oauth::{TokenAuth, TokenEndpoint};
use super::auth::{HeaderAuth, NoAuth};
use super::error::{AdapterError, Edit, ErrorClass, already_done};
use super::http::{HttpClient, HttpResponse, RateSignal, Req, RetryPolicy, path_segment};
use super::kit::context::AdapterContext;
use super::kit::errors::{VendorProfile, classify_status};
use super::kit::paging::link_next;
use super::kit::settings::{self, optional_in};
use super::{
    AResult, About, AccountSpec, Adapter, Capabilities, EntitlementTarget, Identity, Page,
    Provisioner, Reader, RemoteAccount, RemoteEntitlement, RemoteMembership, collect_all,
};
use crate::model::EntitlementKind;
use crate::{Error, Result};
use async_trait::async_trait;
use reqwest::header::{ACCEPT, HeaderMap, HeaderName};
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

pub const API_VERSION: &str = "2022-11-28";
const DEFAULT_BASE: &str = "https://api.github.com";
/// A classic token needs `admin:org` to invite and remove members and manage teams.
pub const SCOPES: [&str; 1] = ["admin:org"];
/// What a GitHub App's installation token asks for: the organisation's Members
/// permission covers membership, invitations and team membership.
pub const APP_PERMISSIONS: [(&str, &str); 1] = [("members", "write")];

/// [`APP_PERMISSIONS`] as the token request and the scope check take them.
fn app_permissions() -> BTreeMap<String, String> {
    APP_PERMISSIONS
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// `[systems.NAME.settings]` of a `github` system.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GitHubSettings {
    /// The organisation's login.
    pub org: String,
    /// Page size (`per_page`, 1-100, default 100).
    #[serde(default, deserialize_with = "optional_in::<_, 1, 100>")]
    pub page_size: Option<u32>,
    /// A GitHub App's id: the credential is then the App's private key (PEM).
    #[serde(default)]
    pub app_id: Option<u64>,
    /// The App's installation on the organisation (with `app_id`).
    #[serde(default)]
    pub installation_id: Option<u64>,
}

/// GitHub's dialect: the primary limit's x-ratelimit-* triple, rate limits answered 403
/// or 429 (a secondary limit may carry no wait at all: a minute, as GitHub asks).
struct GitHubProfile;

fn says_rate_limit(body: &[u8]) -> bool {
    let v: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    v["message"]
        .as_str()
        .is_some_and(|m| m.to_ascii_lowercase().contains("rate limit"))
}

impl VendorProfile for GitHubProfile {
    fn rate_signal(&self, status: u16, headers: &HeaderMap, body: &[u8]) -> RateSignal {
        let mut s = RateSignal::from_triple(
            status,
            headers,
            "x-ratelimit-limit",
            "x-ratelimit-remaining",
            "x-ratelimit-reset",
        );
        if (status == 403 || status == 429) && says_rate_limit(body) {
            s.throttled = true;
            // GitHub: with retry-after, wait that long; with the primary limit spent
            // (remaining 0), until its reset; otherwise it is a secondary limit, whose
            // headers describe the primary window (not spent): wait a minute.
            if s.retry_after.is_none() && s.remaining != Some(0) {
                s.retry_after = Some(Duration::from_secs(60));
            }
        }
        s
    }

    fn classify(
        &self,
        system: &str,
        status: u16,
        headers: &HeaderMap,
        body: &[u8],
    ) -> AdapterError {
        let v: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
        let message = v["message"].as_str().unwrap_or("").to_string();
        let mut e = classify_status(system, status, headers, body, None, message.clone());
        if (status == 403 || status == 429) && says_rate_limit(body) {
            let wait = super::http::retry_after(headers).or(Some(Duration::from_secs(60)));
            e.class = ErrorClass::RateLimited { retry_after: wait };
        } else if status == 422 && message.to_ascii_lowercase().contains("already") {
            e.class = ErrorClass::Conflict;
        } else if status == 410 {
            e.message = format!("{message} (API version {API_VERSION} is no longer served)");
        }
        e
    }
}

pub struct GitHub {
    about: About,
    http: HttpClient,
    /// The installation token's source when acting as a GitHub App.
    app: Option<Arc<TokenAuth>>,
    org: String,
    per_page: String,
}

impl std::fmt::Debug for GitHub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GitHub")
            .field("org", &self.org)
            .field("credential", &self.http.auth_source())
            .finish()
    }
}

pub fn from_config(ctx: AdapterContext<'_>) -> Result<Arc<dyn Adapter>> {
    Ok(Arc::new(GitHub::from_context(ctx)?))
}

impl GitHub {
    pub fn from_context(ctx: AdapterContext<'_>) -> Result<Self> {
        let name = ctx.entry.system.name.clone();
        ctx.require_api_version(API_VERSION, "the GitHub REST API")?;
        let set: GitHubSettings = settings::parse(ctx.entry)?;
        let base = ctx
            .entry
            .base_url
            .clone()
            .unwrap_or_else(|| DEFAULT_BASE.into());
        let to_usage = |e: AdapterError| Error::usage(e.to_string(), "");
        let mut http = HttpClient::new(
            &name,
            &base,
            ctx.timeouts,
            ctx.limiter.clone(),
            Arc::new(NoAuth),
            Arc::new(GitHubProfile),
        )
        .map_err(to_usage)?;
        http.retry = RetryPolicy {
            max_elapsed: Duration::from_secs(150),
            ..RetryPolicy::default()
        };
        let source = ctx.credential()?.to_string();
        let app = match (set.app_id, set.installation_id) {
            (None, None) => None,
            (Some(app_id), Some(installation_id)) => {
                let signer = Signer::rsa_from_pem(ctx.secret()?.expose(), None).map_err(|why| {
                    Error::usage(
                        format!("system {name}: the credential from {source} {why}"),
                        "with app_id set, the credential is the GitHub App's private key (the .pem GitHub generated)",
                    )
                })?;
                let grant = AppInstallation {
                    app_id,
                    installation_id,
                    signer,
                    permissions: app_permissions(),
                    api_version: API_VERSION,
                };
                let endpoint = TokenEndpoint {
                    url: base.clone(),
                    timeouts: ctx.timeouts,
                    limiter: ctx.limiter.clone(),
                    retry: http.retry,
                    profile: Arc::new(GitHubProfile),
                };
                Some(Arc::new(
                    TokenAuth::new(&name, &source, endpoint, Box::new(grant))
                        .map_err(to_usage)?
                        .with_watch(http.watch.clone()),
                ))
            }
            _ => {
                return Err(Error::usage(
                    format!(
                        "system {name}: settings.app_id and settings.installation_id go together"
                    ),
                    "set both to act as a GitHub App, or neither to use a token",
                ));
            }
        };
        let needed: Vec<String> = match &app {
            Some(_) => permission_scopes(&app_permissions()),
            None => SCOPES.iter().map(|s| s.to_string()).collect(),
        };
        match &app {
            Some(auth) => http.set_auth(auth.clone()),
            None => http.set_auth(Arc::new(HeaderAuth {
                scheme: "Bearer",
                secret: ctx.secret()?,
                source,
            })),
        }
        let caps = Capabilities {
            suspend: false,
            delete: false,
            list_entitlements: true,
            stores_hris_id: false,
        };
        let mut about = About::of(&http, API_VERSION, caps);
        about.needed_scopes = needed;
        Ok(GitHub {
            about,
            http,
            app,
            org: set.org,
            per_page: set.page_size.unwrap_or(100).to_string(),
        })
    }

    pub fn set_retry(&mut self, retry: RetryPolicy) {
        self.http.retry = retry;
    }

    async fn send(&self, req: Req) -> AResult<HttpResponse> {
        let version = HeaderName::from_static("x-github-api-version");
        self.http
            .send(
                req.header(ACCEPT, "application/vnd.github+json")
                    .header(version, API_VERSION),
            )
            .await
    }

    fn json(&self, r: &HttpResponse, what: &str) -> AResult<Value> {
        r.json(&self.about.system, what)
    }

    fn membership_path(&self, user: &str) -> String {
        format!(
            "/orgs/{}/memberships/{}",
            path_segment(&self.org),
            path_segment(user)
        )
    }

    fn account(login: &str, state: &str, role: &str) -> RemoteAccount {
        let attributes = BTreeMap::from([
            ("state".to_string(), state.to_string()),
            ("role".to_string(), role.to_string()),
        ]);
        RemoteAccount {
            external_id: login.to_string(),
            login: login.to_string(),
            email: None,
            active: state == "active",
            hris_id: None,
            attributes,
        }
    }

    async fn membership(&self, user: &str) -> AResult<Option<RemoteAccount>> {
        match self.send(Req::get(self.membership_path(user))).await {
            Ok(r) => {
                let v = self.json(&r, "an organisation membership")?;
                let login = v["user"]["login"].as_str().unwrap_or(user).to_string();
                Ok(Some(Self::account(
                    &login,
                    v["state"].as_str().unwrap_or(""),
                    v["role"].as_str().unwrap_or(""),
                )))
            }
            Err(e) if e.class == ErrorClass::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn invite(&self, user: &str) -> AResult<RemoteAccount> {
        let r = self
            .send(Req::put(self.membership_path(user)).json(json!({"role": "member"})))
            .await?;
        let v = self.json(&r, "an organisation membership")?;
        Ok(Self::account(
            user,
            v["state"].as_str().unwrap_or("pending"),
            v["role"].as_str().unwrap_or("member"),
        ))
    }

    /// One page of a Link-paged listing: `first` the first time, then the `next` link.
    async fn page(
        &self,
        first: String,
        cursor: Option<String>,
        what: &str,
    ) -> AResult<(Vec<Value>, Option<String>)> {
        let r = self.send(Req::get(cursor.unwrap_or(first))).await?;
        let next = link_next(&r.headers).map(|n| self.rebase(&n));
        let items = self.json(&r, what)?.as_array().cloned().unwrap_or_default();
        Ok((items, next))
    }

    /// A `Link` target as a path on the configured base: GitHub builds links from the
    /// host it was asked on, which behind a proxy is not ours; only the path and query are
    /// followed, so paging never leaves the configured host.
    fn rebase(&self, link: &str) -> String {
        let Ok(u) = url::Url::parse(link) else {
            return link.to_string();
        };
        let prefix = self.http.base().path().trim_end_matches('/');
        let path = u.path().strip_prefix(prefix).unwrap_or(u.path());
        match u.query() {
            Some(q) => format!("{path}?{q}"),
            None => path.to_string(),
        }
    }

    /// `{at}/members` (active), then `{at}/invitations` (pending), Link-paged; the cursor
    /// says which: `m:LINK`, then `i:LINK`.
    async fn members_then_invitations(
        &self,
        at: &str,
        cursor: Option<String>,
        what: &str,
    ) -> AResult<Page<RemoteAccount>> {
        let (phase, link) = match cursor.as_deref().and_then(|c| c.split_once(':')) {
            Some((p, rest)) => (p.to_string(), (!rest.is_empty()).then(|| rest.to_string())),
            None => ("m".to_string(), None),
        };
        let members = phase == "m";
        let (list, state) = if members {
            ("members", "active")
        } else {
            ("invitations", "pending")
        };
        let first = format!("{at}/{list}?per_page={}", self.per_page);
        let (items, next) = self
            .page(first, link, &format!("a page of {what} {list}"))
            .await?;
        let items = items
            .iter()
            .filter_map(|u| u["login"].as_str().or(u["email"].as_str()))
            .map(|l| Self::account(l, state, ""))
            .collect();
        let next = match (members, next) {
            (true, Some(n)) => Some(format!("m:{n}")),
            (true, None) => Some("i:".to_string()),
            (false, n) => n.map(|n| format!("i:{n}")),
        };
        Ok(Page { items, next })
    }

    fn team_path(&self, slug: &str) -> String {
        format!(
            "/orgs/{}/teams/{}",
            path_segment(&self.org),
            path_segment(slug)
        )
    }
}

#[async_trait]
impl Reader for GitHub {
    fn about(&self) -> &About {
        &self.about
    }

    async fn authenticate(&self) -> AResult<Identity> {
        if let Some(app) = &self.app {
            return self.authenticate_app(app).await;
        }
        let r = self.send(Req::get("/user")).await?;
        let scopes: Vec<String> = r
            .header("x-oauth-scopes")
            .map(|s| {
                s.split(',')
                    .map(|x| x.trim().to_string())
                    .filter(|x| !x.is_empty())
                    .collect()
            })
            .unwrap_or_default();
        if let (false, Some(w)) = (scopes.is_empty(), self.watch()) {
            w.scopes_granted(scopes.clone());
        }
        let me = self.json(&r, "the token's user")?;
        let mut details = self.details();
        if let Some(exp) = r.header("github-authentication-token-expiration") {
            details.insert("token_expires".into(), exp.to_string());
        }
        Ok(Identity {
            principal: me["login"].as_str().unwrap_or("").to_string(),
            scopes,
            details,
        })
    }

    async fn get_account_by_login(&self, login: &str) -> AResult<Option<RemoteAccount>> {
        self.membership(login).await
    }

    async fn get_account(&self, external_id: &str) -> AResult<Option<RemoteAccount>> {
        self.membership(external_id).await
    }

    /// The teams the user is in: each team asked once (GitHub lists no user's teams).
    async fn list_memberships(&self, account_id: &str) -> AResult<Vec<RemoteMembership>> {
        let teams = collect_all(|c| self.list_entitlements(c), 3).await?;
        let mut out = Vec::new();
        for t in teams {
            let path = format!(
                "{}/memberships/{}",
                self.team_path(&t.external_id),
                path_segment(account_id)
            );
            match self.send(Req::get(path)).await {
                Ok(_) => out.push(RemoteMembership {
                    kind: EntitlementKind::Team,
                    name: t.name,
                    external_id: t.external_id,
                }),
                Err(e) if e.class == ErrorClass::NotFound => {}
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }

    /// Members (active), then pending invitations (their own state); the cursor says which.
    async fn list_accounts(&self, cursor: Option<String>) -> AResult<Page<RemoteAccount>> {
        let org = format!("/orgs/{}", path_segment(&self.org));
        self.members_then_invitations(&org, cursor, "organisation")
            .await
    }

    /// The team's members (active), then the pending invitations that carry the team
    /// (someone added before accepting: GitHub holds that membership as pending, as
    /// `list_memberships`' per-team read does).
    async fn list_members(
        &self,
        target: &EntitlementTarget,
        cursor: Option<String>,
    ) -> AResult<Page<RemoteAccount>> {
        let team = self.team_path(&target.name);
        self.members_then_invitations(&team, cursor, "team").await
    }

    async fn list_entitlements(&self, cursor: Option<String>) -> AResult<Page<RemoteEntitlement>> {
        let first = format!(
            "/orgs/{}/teams?per_page={}",
            path_segment(&self.org),
            self.per_page
        );
        let (items, next) = self.page(first, cursor, "a page of teams").await?;
        Ok(Page {
            items: items
                .iter()
                .map(|t| RemoteEntitlement {
                    kind: EntitlementKind::Team,
                    name: t["slug"].as_str().unwrap_or("").to_string(),
                    external_id: t["slug"].as_str().unwrap_or("").to_string(),
                })
                .collect(),
            next,
        })
    }
}

#[async_trait]
impl Provisioner for GitHub {
    async fn create_account(&self, spec: &AccountSpec) -> AResult<RemoteAccount> {
        if let Some(existing) = self.membership(&spec.login).await? {
            let state = existing
                .attributes
                .get("state")
                .cloned()
                .unwrap_or_default();
            return Err(AdapterError::new(
                ErrorClass::Conflict,
                &self.about.system,
                format!("{} is already in {} ({state})", spec.login, self.org),
            ));
        }
        self.invite(&spec.login).await
    }

    async fn update_account(
        &self,
        external_id: &str,
        _spec: &AccountSpec,
    ) -> AResult<RemoteAccount> {
        self.membership(external_id).await?.ok_or_else(|| {
            AdapterError::new(
                ErrorClass::NotFound,
                &self.about.system,
                format!("{external_id} is not in {}", self.org),
            )
        })
    }

    async fn deactivate_account(&self, external_id: &str) -> AResult<()> {
        let r = self
            .send(Req::delete(self.membership_path(external_id)))
            .await
            .map(|_| ());
        already_done(Edit::Deactivate, r)
    }

    async fn reactivate_account(&self, external_id: &str) -> AResult<()> {
        self.invite(external_id).await.map(|_| ())
    }

    async fn add_membership(&self, account_id: &str, target: &EntitlementTarget) -> AResult<()> {
        let path = format!(
            "{}/memberships/{}",
            self.team_path(&target.name),
            path_segment(account_id)
        );
        let r = self
            .send(Req::put(path).json(json!({"role": "member"})))
            .await
            .map(|_| ());
        already_done(Edit::Grant, r)
    }

    async fn remove_membership(&self, account_id: &str, target: &EntitlementTarget) -> AResult<()> {
        let path = format!(
            "{}/memberships/{}",
            self.team_path(&target.name),
            path_segment(account_id)
        );
        already_done(Edit::Revoke, self.send(Req::delete(path)).await.map(|_| ()))
    }
}

impl GitHub {
    fn details(&self) -> BTreeMap<String, String> {
        BTreeMap::from([
            ("org".to_string(), self.org.clone()),
            ("credential".to_string(), self.http.auth_source()),
        ])
    }

    /// As a GitHub App there is no user: an installation token is fetched and used to
    /// read one page of the organisation's members (which needs the Members permission).
    async fn authenticate_app(&self, app: &TokenAuth) -> AResult<Identity> {
        let org = path_segment(&self.org);
        self.send(Req::get(format!("/orgs/{org}/members?per_page=1")))
            .await?;
        let issued = app.issued();
        let mut details = self.details();
        if let Some(i) = &issued {
            details.insert(
                "token_lifetime_secs".into(),
                i.lifetime.as_secs().to_string(),
            );
        }
        Ok(Identity {
            principal: app.who(),
            scopes: issued.map(|i| i.scopes).unwrap_or_default(),
            details,
        })
    }

    /// The credential's source, for messages.
    pub fn credential_source(&self) -> String {
        self.http.auth_source()
    }
}
