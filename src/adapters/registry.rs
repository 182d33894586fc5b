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

    /// Refuse a systems.toml `api_version` other than the one the adapter is pinned to.
    /// `api` names what the adapter speaks ("Okta Management API", "SCIM", ...).
    pub fn require_api_version(&self, supported: &str, api: &str) -> Result<()> {
        let name = &self.entry.system.name;
        let pinned = &self.entry.system.api_version;
        if pinned == supported {
            return Ok(());
        }
        Err(Error::usage(
            format!(
                "system {name}: api_version {pinned:?} is not supported; the adapter speaks {api} {supported}"
            ),
            format!("remove api_version from [systems.{name}] or set it to \"{supported}\""),
        ))
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::SystemsConfig;
    use std::path::Path;

    struct NoSecrets;
    impl SecretSource for NoSecrets {
        fn resolve(&self, _c: &CredentialRef) -> Result<Secret> {
            Ok(Secret::new(""))
        }
    }

    #[test]
    fn a_pinned_api_version_other_than_the_adapters_is_refused() {
        let cfg = SystemsConfig::parse(
            Path::new("s.toml"),
            "[systems.idp]\nkind = \"okta\"\napi_version = \"v2\"\n",
        )
        .unwrap();
        let entry = &cfg.catalog.systems["idp"];
        let ctx = AdapterContext {
            entry,
            secrets: &NoSecrets,
            limiter: limiter_for(entry),
            timeouts: Timeouts::default(),
        };
        assert!(ctx.require_api_version("v2", "Okta").is_ok());
        let e = ctx
            .require_api_version("v1", "Okta Management API")
            .unwrap_err();
        assert_eq!(e.exit_code(), 2);
        assert!(e.to_string().contains("system idp: api_version \"v2\" is not supported; the adapter speaks Okta Management API v1"), "{e}");
        assert!(e.hint().unwrap().contains("set it to \"v1\""));
    }
}
