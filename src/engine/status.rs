//! What the engine can tell the console about its systems without touching the queue:
//! the live rate-limit state, and whether a credential is accepted right now.

use super::workers::Engine;
use crate::{Error, Result};

/// A system's rate-limit state as the limiter sees it. Re-exported here so that the
/// console reads it from the engine and never names the adapters.
pub use crate::adapters::http::LimiterSnapshot;

impl Engine {
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
        match adapter.authenticate().await {
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
