//! Builds adapters from systems.toml: one adapter per configured system, each with its own
//! rate limiter (shared by all of that system's workers) and its credential resolved from
//! the keychain or the environment.

use super::Adapter;
use super::http::{RateLimiter, Timeouts};
use crate::config::SystemEntry;
use crate::config::systems::CredentialRef;
use crate::model::SystemKind;
use crate::secrets::{Keychain, Secret};
use crate::{Error, Result};
use std::sync::Arc;

/// Where adapters get their secrets. The keychain in production; tests may pass a map.
pub trait SecretSource: Send + Sync {
    fn resolve(&self, cred: &CredentialRef) -> Result<Secret>;
}

impl SecretSource for Keychain {
    fn resolve(&self, cred: &CredentialRef) -> Result<Secret> {
        Keychain::resolve(self, cred)
    }
}

/// What every adapter constructor receives.
pub struct AdapterContext<'a> {
    pub entry: &'a SystemEntry,
    pub secrets: &'a dyn SecretSource,
    pub limiter: Arc<RateLimiter>,
    pub timeouts: Timeouts,
}

impl AdapterContext<'_> {
    pub fn base_url(&self) -> Result<&str> {
        self.entry.base_url.as_deref().ok_or_else(|| {
            Error::usage(
                format!("system {} has no base_url", self.entry.system.name),
                format!(
                    "add base_url to [systems.{}] in systems.toml",
                    self.entry.system.name
                ),
            )
        })
    }

    pub fn credential(&self) -> Result<&CredentialRef> {
        self.entry.credential.as_ref().ok_or_else(|| {
            Error::usage(
                format!("system {} has no credential", self.entry.system.name),
                format!(
                    "add credential = \"keyring:NAME\" to [systems.{}]",
                    self.entry.system.name
                ),
            )
        })
    }

    pub fn secret(&self) -> Result<Secret> {
        self.secrets.resolve(self.credential()?)
    }

    /// A string setting from `[systems.NAME.settings]`.
    pub fn setting(&self, key: &str) -> Option<String> {
        self.entry
            .settings
            .get(key)
            .and_then(|v| v.as_str())
            .map(str::to_string)
    }
}

/// The limiter for a system, from its configured budget.
pub fn limiter_for(entry: &SystemEntry) -> Arc<RateLimiter> {
    let (rpm, conc) = match entry.rate_limit {
        Some(r) => (Some(r.requests_per_minute), r.concurrency),
        None => (None, 4),
    };
    RateLimiter::new(&entry.system.name, rpm, conc)
}

/// Build the adapter for one configured system.
pub fn build(entry: &SystemEntry, secrets: &dyn SecretSource) -> Result<Arc<dyn Adapter>> {
    let ctx = AdapterContext {
        entry,
        secrets,
        limiter: limiter_for(entry),
        timeouts: Timeouts::default(),
    };
    build_with(ctx)
}

pub fn build_with(ctx: AdapterContext<'_>) -> Result<Arc<dyn Adapter>> {
    match ctx.entry.system.kind {
        SystemKind::Okta => super::okta::from_config(ctx),
        SystemKind::Scim => super::scim::from_config(ctx),
        SystemKind::AwsIam => super::aws_iam::from_config(ctx),
        SystemKind::AwsIdentityStore => super::aws_identitystore::from_config(ctx),
        other => Err(Error::usage(
            format!(
                "system {}: no adapter for kind {other} yet",
                ctx.entry.system.name
            ),
            "available kinds: okta, scim, aws_iam, aws_identity_store",
        )),
    }
}
