//! The Slack adapter: the user lifecycle over Slack's SCIM API (the SCIM adapter, reused
//! whole), channel membership over the Web API.
//!
//! What accessdesk's operations mean here:
//! - **create / update / deactivate / reactivate, reading accounts**: SCIM `/Users`
//!   (`https://api.slack.com/scim/v2`, `scim_url`), with a user token that has the
//!   `admin` scope (`scim_credential`). Deactivating sets `active: false`: Slack signs the
//!   user out everywhere and frees the seat; the account and its history stay.
//! - **grant / revoke** a `channel` entitlement: `conversations.invite` /
//!   `conversations.kick` with the bot token (`credential`), the channel named as in
//!   Slack (without `#`) or by its id (`external_id`). `already_in_channel` and
//!   `not_in_channel` are done. `group` entitlements are Slack user groups over SCIM.
//! - **observe**: SCIM users; `conversations.list`, `conversations.members` and
//!   `users.conversations` for channels.
//!
//! Slack answers every Web API failure with **HTTP 200** and `{"ok": false, "error":
//! "..."}`; the error string is classified by one table (`SLACK_ERRORS`). Rate limits are
//! per method tier: a 429 with `Retry-After`, which the shared limiter honours per method
//! (each method is its own bucket). The token's scopes come back in `x-oauth-scopes`.

use super::auth::HeaderAuth;
use super::error::{AdapterError, Edit, ErrorClass, already_done};
use super::http::{HttpClient, HttpResponse, Req, RetryPolicy};
use super::kit::context::AdapterContext;
use super::kit::errors::{Class, ErrorRule, VendorProfile, classify_by, code};
use super::kit::settings;
use super::scim::ScimAdapter;
use super::{
    AResult, About, AccountSpec, Adapter, Capabilities, EntitlementTarget, Identity, NameCache,
    Page, Provisioner, Reader, RemoteAccount, RemoteEntitlement, RemoteMembership, collect_all,
};
use crate::config::systems::CredentialRef;
use crate::model::EntitlementKind;
use crate::{Error, Result};
use async_trait::async_trait;
use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::Arc;

pub const API_VERSION: &str = "web";
const DEFAULT_BASE: &str = "https://slack.com/api";
const DEFAULT_SCIM: &str = "https://api.slack.com/scim/v2";
/// The bot token's scopes for channels (public and private) and looking people up.
pub const SCOPES: [&str; 5] = [
    "channels:read",
    "channels:manage",
    "groups:read",
    "groups:write",
    "users:read.email",
];

/// `[systems.NAME.settings]` of a `slack` system.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlackSettings {
    /// The SCIM API's root (default `https://api.slack.com/scim/v2`).
    pub scim_url: Option<String>,
    /// The user token (with `admin`) for SCIM, as `keyring:NAME` or `env:VAR`.
    pub scim_credential: Option<String>,
}

/// Slack's `error` strings, classified; anything else is permanent.
const SLACK_ERRORS: &[ErrorRule] = &[
    code("ratelimited", Class::RateLimited),
    code("invalid_auth", Class::Unauthorized),
    code("not_authed", Class::Unauthorized),
    code("token_revoked", Class::Unauthorized),
    code("token_expired", Class::Unauthorized),
    code("account_inactive", Class::Unauthorized),
    code("already_in_channel", Class::Conflict),
    code("not_in_channel", Class::NotFound),
    code("user_not_found", Class::NotFound),
    code("users_not_found", Class::NotFound),
    code("channel_not_found", Class::NotFound),
    code("internal_error", Class::Transient),
    code("fatal_error", Class::Transient),
    code("service_unavailable", Class::Transient),
    code("request_timeout", Class::Transient),
];

/// `Authorization: Bearer`, which Slack reads, and the same token in a `token` header,
/// which Slack's own description declares (required on `auth.test`); both sensitive.
struct SlackAuth(HeaderAuth);

#[async_trait]
impl super::auth::Auth for SlackAuth {
    async fn authorize(&self, req: &mut reqwest::Request) -> AResult<()> {
        self.0.authorize(req).await?;
        if let Ok(mut v) = reqwest::header::HeaderValue::from_str(self.0.secret.expose()) {
            v.set_sensitive(true);
            req.headers_mut().insert("token", v);
        }
        Ok(())
    }
    fn source(&self) -> String {
        self.0.source()
    }
}

/// Each Web API method is its own rate bucket (Slack's tiers are per method).
struct SlackProfile;

impl VendorProfile for SlackProfile {
    fn bucket(&self, _method: &reqwest::Method, path: &str) -> String {
        path.rsplit('/').next().unwrap_or("").to_string()
    }
}

pub struct SlackAdapter {
    about: About,
    web: HttpClient,
    scim: ScimAdapter,
    channels: NameCache,
}

impl std::fmt::Debug for SlackAdapter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SlackAdapter")
            .field("system", &self.about.system)
            .field("credential", &self.web.auth_source())
            .finish()
    }
}

pub fn from_config(ctx: AdapterContext<'_>) -> Result<Arc<dyn Adapter>> {
    Ok(Arc::new(SlackAdapter::from_context(ctx)?))
}

impl SlackAdapter {
    pub fn from_context(ctx: AdapterContext<'_>) -> Result<Self> {
        let name = ctx.entry.system.name.clone();
        ctx.require_api_version(API_VERSION, "the Slack Web API")?;
        let set: SlackSettings = settings::parse(ctx.entry)?;
        let source = ctx.credential()?.to_string();
        let token = ctx.secret()?;
        let base = ctx
            .entry
            .base_url
            .clone()
            .unwrap_or_else(|| DEFAULT_BASE.into());
        let to_usage = |e: AdapterError| Error::usage(e.to_string(), "");
        let auth = SlackAuth(HeaderAuth {
            scheme: "Bearer",
            secret: token,
            source,
        });
        let mut web = HttpClient::new(
            &name,
            &base,
            ctx.timeouts,
            ctx.limiter.clone(),
            Arc::new(auth),
            Arc::new(SlackProfile),
        )
        .map_err(to_usage)?;
        web.retry = RetryPolicy::default();
        // The SCIM side: the SCIM adapter on the same system, with its own user token.
        let mut entry = ctx.entry.clone();
        entry.system.api_version = super::scim::SCIM_VERSION.into();
        // Slack's SCIM lives on api.slack.com; anywhere else (a proxy, the simulator) it is
        // /scim/v2 on the Web API's host.
        let scim_url = set
            .scim_url
            .unwrap_or_else(|| match url::Url::parse(&base) {
                Ok(u) if u.host_str() != Some("slack.com") => {
                    format!("{}/scim/v2", u.origin().ascii_serialization())
                }
                _ => DEFAULT_SCIM.into(),
            });
        entry.base_url = Some(scim_url);
        entry.settings = BTreeMap::new();
        if let Some(c) = &set.scim_credential {
            entry.credential = Some(CredentialRef::parse(c).map_err(|why| {
                Error::usage(
                    format!("system {name}: settings.scim_credential: {why}"),
                    "scim_credential = \"keyring:slack-scim\"",
                )
            })?);
        }
        let scim = ScimAdapter::new(&AdapterContext {
            entry: &entry,
            secrets: ctx.secrets,
            limiter: ctx.limiter.clone(),
            timeouts: ctx.timeouts,
        })?;
        let caps = Capabilities {
            suspend: false,
            delete: false,
            list_entitlements: true,
            stores_hris_id: true,
        };
        Ok(SlackAdapter {
            about: About::of(&web, API_VERSION, caps).needing(&SCOPES),
            web,
            scim,
            channels: NameCache::default(),
        })
    }

    /// One Web API call: HTTP 200 with `ok: false` is the classified error it names.
    async fn call(&self, req: Req, method: &str) -> AResult<Value> {
        self.answer(req, method).await.map(|(v, _)| v)
    }

    /// The answer and the response it came in (for its headers).
    async fn answer(&self, req: Req, method: &str) -> AResult<(Value, HttpResponse)> {
        let resp = self.web.send(req).await?;
        let v: Value = resp.json(&self.about.system, "a Slack Web API answer")?;
        if v["ok"] == true {
            return Ok((v, resp));
        }
        let error = v["error"].as_str().unwrap_or("unknown_error").to_string();
        let class = classify_by(SLACK_ERRORS, 200, Some(&error)).with_wait(None);
        let mut msg = format!("{method}: {error}");
        if error == "missing_scope" {
            msg = format!(
                "{msg} (needed {}, the token has {})",
                v["needed"].as_str().unwrap_or("?"),
                v["provided"].as_str().unwrap_or("?")
            );
        }
        if class == ErrorClass::Unauthorized {
            msg = format!(
                "{} rejected the credential from {} (expired or revoked?): {msg}",
                self.about.system,
                self.web.auth_source()
            );
        }
        Err(AdapterError::new(class, &self.about.system, msg)
            .with_status(200)
            .with_code(error)
            .with_excerpt(&resp.body))
    }

    async fn get(&self, method: &str, query: &[(&str, &str)]) -> AResult<Value> {
        let q: String = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(query)
            .finish();
        self.call(Req::get(format!("/{method}?{q}")), method).await
    }

    async fn post(&self, method: &str, form: &[(&str, &str)]) -> AResult<Value> {
        let form = form
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        self.call(Req::post(format!("/{method}")).form(form), method)
            .await
    }

    fn next(v: &Value) -> Option<String> {
        v["response_metadata"]["next_cursor"]
            .as_str()
            .filter(|c| !c.is_empty())
            .map(str::to_string)
    }

    async fn channels_page(&self, cursor: Option<String>) -> AResult<Page<RemoteEntitlement>> {
        let c = cursor.unwrap_or_default();
        let v = self
            .get(
                "conversations.list",
                &[
                    ("types", "public_channel,private_channel"),
                    ("limit", "200"),
                    ("cursor", &c),
                ],
            )
            .await?;
        let items = v["channels"].as_array().cloned().unwrap_or_default();
        Ok(Page {
            items: items
                .iter()
                .map(|ch| RemoteEntitlement {
                    kind: EntitlementKind::Channel,
                    name: ch["name"].as_str().unwrap_or("").to_string(),
                    external_id: ch["id"].as_str().unwrap_or("").to_string(),
                })
                .collect(),
            next: Self::next(&v),
        })
    }

    /// A channel's id: the configured one, else found by name once (and cached).
    async fn channel_id(&self, t: &EntitlementTarget) -> AResult<String> {
        if !t.external_id.is_empty() && t.external_id != t.name {
            return Ok(t.external_id.clone());
        }
        let name = t.name.trim_start_matches('#');
        if let Some(id) = self.channels.get(name) {
            return Ok(id);
        }
        let all = collect_all(|c| self.channels_page(c), 3).await?;
        self.channels.remember(
            all.iter()
                .map(|c| (c.name.as_str(), c.external_id.as_str())),
        );
        self.channels.get(name).ok_or_else(|| {
            AdapterError::new(
                ErrorClass::NotFound,
                &self.about.system,
                format!("no Slack channel named #{name}"),
            )
        })
    }
}

#[async_trait]
impl Reader for SlackAdapter {
    fn about(&self) -> &About {
        &self.about
    }

    async fn authenticate(&self) -> AResult<Identity> {
        let (v, resp) = self.answer(Req::get("/auth.test"), "auth.test").await?;
        let scopes: Vec<String> = resp
            .header("x-oauth-scopes")
            .map(|s| {
                s.split(',')
                    .map(|x| x.trim().to_string())
                    .filter(|x| !x.is_empty())
                    .collect()
            })
            .unwrap_or_default();
        let scim = self.scim.authenticate().await?;
        let mut details = BTreeMap::new();
        details.insert("team".into(), v["team"].as_str().unwrap_or("").to_string());
        details.insert(
            "bot_user".into(),
            v["user_id"].as_str().unwrap_or("").to_string(),
        );
        details.insert("scim".into(), scim.principal);
        Ok(Identity {
            principal: v["user"].as_str().unwrap_or("").to_string(),
            scopes,
            details,
        })
    }

    async fn get_account_by_login(&self, login: &str) -> AResult<Option<RemoteAccount>> {
        self.scim.get_account_by_login(login).await
    }

    async fn get_account(&self, external_id: &str) -> AResult<Option<RemoteAccount>> {
        self.scim.get_account(external_id).await
    }

    /// The user's channels, then their SCIM user groups.
    async fn list_memberships(&self, account_id: &str) -> AResult<Vec<RemoteMembership>> {
        let channels = collect_all(
            |c| async move {
                let c = c.unwrap_or_default();
                let v = self
                    .get(
                        "users.conversations",
                        &[
                            ("user", account_id),
                            ("types", "public_channel,private_channel"),
                            ("limit", "200"),
                            ("cursor", &c),
                        ],
                    )
                    .await?;
                let items = v["channels"].as_array().cloned().unwrap_or_default();
                Ok(Page {
                    items,
                    next: Self::next(&v),
                })
            },
            3,
        )
        .await?;
        let mut out: Vec<RemoteMembership> = channels
            .iter()
            .map(|ch| RemoteMembership {
                kind: EntitlementKind::Channel,
                name: ch["name"].as_str().unwrap_or("").to_string(),
                external_id: ch["id"].as_str().unwrap_or("").to_string(),
            })
            .collect();
        out.extend(self.scim.list_memberships(account_id).await?);
        Ok(out)
    }

    async fn list_accounts(&self, cursor: Option<String>) -> AResult<Page<RemoteAccount>> {
        self.scim.list_accounts(cursor).await
    }

    /// A channel's members are ids only; each is read from SCIM (a page is at most 200).
    async fn list_members(
        &self,
        target: &EntitlementTarget,
        cursor: Option<String>,
    ) -> AResult<Page<RemoteAccount>> {
        if target.kind != EntitlementKind::Channel {
            return self.scim.list_members(target, cursor).await;
        }
        let id = self.channel_id(target).await?;
        let c = cursor.unwrap_or_default();
        let v = self
            .get(
                "conversations.members",
                &[("channel", &id), ("limit", "200"), ("cursor", &c)],
            )
            .await?;
        let mut items = Vec::new();
        for m in v["members"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
        {
            if let Some(a) = self.scim.get_account(m).await? {
                items.push(a);
            }
        }
        Ok(Page {
            items,
            next: Self::next(&v),
        })
    }

    async fn list_entitlements(&self, cursor: Option<String>) -> AResult<Page<RemoteEntitlement>> {
        self.channels_page(cursor).await
    }
}

#[async_trait]
impl Provisioner for SlackAdapter {
    async fn create_account(&self, spec: &AccountSpec) -> AResult<RemoteAccount> {
        self.scim.create_account(spec).await
    }

    async fn update_account(
        &self,
        external_id: &str,
        spec: &AccountSpec,
    ) -> AResult<RemoteAccount> {
        self.scim.update_account(external_id, spec).await
    }

    async fn deactivate_account(&self, external_id: &str) -> AResult<()> {
        self.scim.deactivate_account(external_id).await
    }

    async fn reactivate_account(&self, external_id: &str) -> AResult<()> {
        self.scim.reactivate_account(external_id).await
    }

    async fn add_membership(&self, account_id: &str, target: &EntitlementTarget) -> AResult<()> {
        if target.kind != EntitlementKind::Channel {
            return self.scim.add_membership(account_id, target).await;
        }
        let id = self.channel_id(target).await?;
        let r = self
            .post(
                "conversations.invite",
                &[("channel", &id), ("users", account_id)],
            )
            .await;
        already_done(Edit::Grant, r.map(|_| ()))
    }

    async fn remove_membership(&self, account_id: &str, target: &EntitlementTarget) -> AResult<()> {
        if target.kind != EntitlementKind::Channel {
            return self.scim.remove_membership(account_id, target).await;
        }
        let id = self.channel_id(target).await?;
        let r = self
            .post(
                "conversations.kick",
                &[("channel", &id), ("user", account_id)],
            )
            .await;
        already_done(Edit::Revoke, r.map(|_| ()))
    }
}
