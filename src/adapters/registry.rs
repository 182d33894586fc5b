//! Builds adapters from systems.toml: one adapter per configured system, each with its own
//! rate limiter (shared by all of that system's workers) and its credential resolved from
//! the keychain or the environment.

use super::Adapter;
use super::http::Timeouts;
pub use super::kit::context::{AdapterContext, SecretSource, limiter_for};
use crate::Result;
use crate::config::SystemEntry;
use crate::model::SystemKind;
use std::sync::Arc;

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
        SystemKind::GoogleWorkspace => super::google_workspace::from_config(ctx),
        SystemKind::Ldap => super::ldap::from_config(ctx),
        SystemKind::Slack => super::slack::from_config(ctx),
        SystemKind::Entra => super::entra::from_config(ctx),
        SystemKind::Github => super::github::from_config(ctx),
    }
}
