//! The Overview's HR sources: each source of sources.toml (beside the home's database)
//! with what the store knows of it: the last delivery and poll, how far the inbox lags,
//! errors, and rejected deliveries. Read from `source_stats`, `source_state` and the
//! inbox's backlog; serve writes them, so the console shows serve's sources too.

use super::Loader;
use crate::Result;
use chrono::{DateTime, Utc};

/// One source on the Overview.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SourceRow {
    pub name: String,
    /// `webhook`, `bamboohr`, ... (`?` when sources.toml no longer names it).
    pub kind: String,
    pub last_event: Option<DateTime<Utc>>,
    pub last_poll: Option<DateTime<Utc>>,
    /// Deliveries stored and not yet processed, and how long the oldest has waited.
    pub pending: i64,
    pub lag_secs: i64,
    /// Records that failed or were held, and failed polls.
    pub errors: i64,
    /// The newest error or hold, as the source's state says.
    pub last_error: Option<String>,
    /// Refused deliveries (every reason).
    pub rejected: i64,
}

impl Loader {
    pub(super) fn sources(&self, now: DateTime<Utc>) -> Result<Vec<SourceRow>> {
        let kinds: Vec<(String, String)> = self
            .store
            .path()
            .parent()
            .map(|home| home.join("sources.toml"))
            .and_then(|p| crate::sources::config::SourcesConfig::load(&p).ok())
            .map(|c| {
                c.sources
                    .values()
                    .map(|s| (s.name.clone(), s.kind.as_str().to_string()))
                    .collect()
            })
            .unwrap_or_default();
        let mut rows: std::collections::BTreeMap<String, SourceRow> = kinds
            .into_iter()
            .map(|(name, kind)| {
                (
                    name.clone(),
                    SourceRow {
                        name,
                        kind,
                        ..Default::default()
                    },
                )
            })
            .collect();
        let row = |rows: &mut std::collections::BTreeMap<String, SourceRow>, name: &str| {
            rows.entry(name.to_string())
                .or_insert_with(|| SourceRow {
                    name: name.to_string(),
                    kind: "?".into(),
                    ..Default::default()
                })
                .name
                .clone()
        };
        for s in self.store.source_stats()? {
            let key = row(&mut rows, &s.source);
            let r = rows.get_mut(&key).expect("just inserted");
            let at = crate::store::inbox::parse_ts(&s.at);
            match s.name.as_str() {
                "received" => r.last_event = at,
                "polls" => r.last_poll = at,
                "failed" | "held" | "poll_errors" | "polls_held" => r.errors += s.value,
                n if n.starts_with("rejected:") => r.rejected += s.value,
                _ => {}
            }
        }
        for (source, n, oldest) in self.store.inbox_backlog()? {
            let key = row(&mut rows, &source);
            let r = rows.get_mut(&key).expect("just inserted");
            r.pending = n;
            r.lag_secs = oldest
                .as_deref()
                .and_then(crate::store::inbox::parse_ts)
                .map_or(0, |t| (now - t).num_seconds().max(0));
        }
        let names: Vec<String> = rows.keys().cloned().collect();
        for name in names {
            if let Some(state) = self.store.source_state(&name)? {
                let e = state["held"]
                    .as_str()
                    .or_else(|| state["error"].as_str())
                    .map(str::to_string);
                if let Some(r) = rows.get_mut(&name) {
                    r.last_error = e;
                }
            }
        }
        Ok(rows.into_values().collect())
    }
}
