//! Serve's pollers: one task per polled source (`poll_every` in sources.toml, default
//! [`DEFAULT_EVERY`]), the first poll at start. A failed poll is logged and recorded in
//! the source's state (the console's Overview shows it); the next tries again from the
//! same cursor.

use super::inbox::Processor;
use crate::Result;
use crate::sources::config::{Source, SourceKind};
use crate::sources::ingest::Context;
use crate::sources::poll::{BambooFeed, Feed, WorkdayFeed, poll_once};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// How often a source without `poll_every` is polled.
pub const DEFAULT_EVERY: Duration = Duration::from_secs(300);

/// The feed that polls `source`.
pub fn feed_for(source: &Source, key: crate::secrets::Secret) -> Result<Box<dyn Feed>> {
    let base = source.base_url.as_deref().unwrap_or_default();
    match source.kind {
        SourceKind::BambooHr => {
            let client = crate::sources::bamboohr::BambooClient::new(
                &source.name,
                base,
                key,
                &source.credential.to_string(),
            )
            .map_err(|e| crate::Error::Failed(e.to_string()))?;
            Ok(Box::new(BambooFeed(client)))
        }
        SourceKind::Workday => {
            let from = source.credential.to_string();
            let cred = crate::sources::workday::WorkdayCredential::parse(&key, &from)
                .map_err(|e| crate::Error::Failed(format!("source {}: {e}", source.name)))?;
            let client = crate::sources::workday::WorkdayClient::new(
                &source.name,
                base,
                cred,
                &from,
                source.report.as_deref(),
                source.token_url.as_deref(),
            )
            .map_err(|e| crate::Error::Failed(e.to_string()))?;
            Ok(Box::new(WorkdayFeed(client)))
        }
        other => Err(crate::Error::Failed(format!(
            "source {}: a {} source is not polled by this build",
            source.name,
            other.as_str()
        ))),
    }
}

/// Poll `name` every `poll_every` until `stop`.
pub async fn run(p: Arc<Processor>, name: String, mut stop: watch::Receiver<bool>) {
    let Some(source) = p.sources.get(&name) else {
        return;
    };
    let every = source.poll_every.unwrap_or(DEFAULT_EVERY);
    let feed = match p
        .sources
        .api_key(&name)
        .map_err(crate::Error::Failed)
        .and_then(|k| feed_for(source, k.clone()))
    {
        Ok(f) => f,
        Err(e) => {
            tracing::error!(source = %name, error = %e, "this source is not polled");
            return;
        }
    };
    let actor = format!("source:{name}");
    loop {
        let ctx = Context {
            catalog: &p.catalog,
            policies: &p.policies,
            guard: &p.guard,
            actor: &actor,
        };
        match poll_once(feed.as_ref(), &p.store, &ctx, source, None).await {
            Ok(r) if r.held.is_some() => {
                tracing::warn!(source = %name, held = ?r.held, "a poll was held by the mass-change guard; nothing applied")
            }
            Ok(r) => tracing::info!(
                source = %name,
                read = r.read,
                unchanged = r.unchanged,
                gone = r.gone,
                partial = r.partial,
                applied = r.applied.len(),
                refused = r.refused.len(),
                "polled"
            ),
            Err(e) => {
                tracing::warn!(source = %name, error = %e, "a poll failed; the next starts from the same cursor")
            }
        }
        tokio::select! {
            _ = stop.wait_for(|s| *s) => return,
            _ = tokio::time::sleep(every) => {}
        }
    }
}
