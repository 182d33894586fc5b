//! What every adapter constructor receives: the system's entry from systems.toml, where
//! its secrets come from, its rate limiter and its HTTP timeouts.

use crate::adapters::http::{RateLimiter, Timeouts};
use crate::config::SystemEntry;
use crate::config::systems::CredentialRef;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::SystemsConfig;
    use std::path::Path;

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
            secrets: &crate::adapters::kit::testkit::FixedSecret::new(""),
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
