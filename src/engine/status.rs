//! What the engine can tell the console about its systems without touching the queue:
//! the live rate-limit state, and whether a credential is accepted right now.

use super::workers::Engine;
use crate::adapters::Adapter;
use crate::adapters::kit::watch::Signals;
use crate::store::Store;
use crate::{Error, Result};

/// A system's rate-limit state as the limiter sees it. Re-exported here so that the
/// console reads it from the engine and never names the adapters.
pub use crate::adapters::http::LimiterSnapshot;

/// Persist what each adapter noticed of its vendor (adapters/kit/watch.rs), for the systems
/// whose signals changed since the last call: one transaction, nothing written otherwise.
pub fn persist_signals<'a>(
    store: &mut Store,
    adapters: impl IntoIterator<Item = (&'a str, &'a dyn Adapter)>,
) -> Result<()> {
    let changed: Vec<(&str, Signals)> = adapters
        .into_iter()
        .filter_map(|(name, a)| {
            let mut s = a.watch()?.take_if_changed()?;
            s.scopes_needed = a.about().needed_scopes.clone();
            Some((name, s))
        })
        .collect();
    if changed.is_empty() {
        return Ok(());
    }
    store.write(|tx| {
        for (name, s) in &changed {
            tx.save_signals(name, s)?;
        }
        Ok(())
    })
}

impl Engine {
    /// Persist the signals of this engine's systems that changed ([`persist_signals`]).
    pub fn flush_signals(&self) -> Result<()> {
        self.db(|s| {
            persist_signals(
                s,
                self.runtimes()
                    .map(|(name, rt)| (name.as_str(), rt.adapter.as_ref() as &dyn Adapter)),
            )
        })
    }

    /// The rate limiter's current view of a system (used/limit, reset, rate).
    pub fn rate_status(&self, system: &str) -> Option<LimiterSnapshot> {
        self.adapter(system)?.limiter().map(|l| l.snapshot())
    }

    /// Authenticate against a system and say who we are there.
    pub async fn test_connection(&self, system: &str) -> Result<String> {
        let adapter = self.adapter(system).ok_or_else(|| {
            Error::Failed(format!(
                "no adapter is running for {system:?} (see its credential in Systems)"
            ))
        })?;
        let result = adapter.authenticate().await;
        if let (Ok(id), Some(w)) = (&result, adapter.watch())
            && !id.scopes.is_empty()
        {
            w.scopes_granted(id.scopes.clone());
        }
        self.flush_signals()?;
        match result {
            Ok(id) => Ok(format!(
                "{system}: connected as {}{}",
                id.principal,
                if id.scopes.is_empty() {
                    String::new()
                } else {
                    format!(" (scopes: {})", id.scopes.join(" "))
                }
            )),
            Err(e) => Err(Error::Failed(format!("{system}: {e}"))),
        }
    }
}
