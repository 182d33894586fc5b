//! What each system's adapter noticed of its vendor ([`crate::adapters::kit::watch`]):
//! kept per system, replaced whole when it changes. Operational state, not audit evidence:
//! not audited, never holds a secret (dates, scope names, header values only).

use super::{Store, Tx};
use crate::Result;
use crate::adapters::kit::watch::Signals;
use rusqlite::{OptionalExtension, params};
use std::collections::BTreeMap;

impl Tx<'_> {
    /// Replace a system's signals with `signals`.
    pub fn save_signals(&mut self, system: &str, signals: &Signals) -> Result<()> {
        let text = serde_json::to_string(signals)
            .map_err(|e| crate::Error::Failed(format!("signals of {system}: {e}")))?;
        self.tx.execute(
            "INSERT INTO system_signals (system, signals, updated_at) VALUES (?1, ?2, ?3)
             ON CONFLICT(system) DO UPDATE SET signals = excluded.signals,
                                               updated_at = excluded.updated_at",
            params![system, text, self.now.to_rfc3339()],
        )?;
        Ok(())
    }
}

impl Store {
    /// One system's signals, if its adapter has reported any.
    pub fn signals(&self, system: &str) -> Result<Option<Signals>> {
        let text: Option<String> = self
            .conn()
            .query_row(
                "SELECT signals FROM system_signals WHERE system = ?1",
                [system],
                |r| r.get(0),
            )
            .optional()?;
        Ok(text.and_then(|t| serde_json::from_str(&t).ok()))
    }

    /// Every system's signals. A row that does not parse (written by a newer build) is
    /// left out rather than failing the listing.
    pub fn all_signals(&self) -> Result<BTreeMap<String, Signals>> {
        let mut stmt = self
            .conn()
            .prepare("SELECT system, signals FROM system_signals")?;
        let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?;
        let mut out = BTreeMap::new();
        for row in rows {
            let (system, text) = row?;
            if let Ok(s) = serde_json::from_str(&text) {
                out.insert(system, s);
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adapters::kit::watch::Deprecation;

    #[test]
    fn signals_round_trip_and_are_replaced_whole() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(&dir.path().join("s.db")).unwrap();
        assert!(store.signals("okta").unwrap().is_none());
        let mut s = Signals {
            last_success_at: Some("2026-12-04T10:00:00+00:00".into()),
            scopes_granted: Some(vec!["okta.users.manage".into()]),
            ..Default::default()
        };
        s.deprecations.push(Deprecation {
            signal: "Sunset".into(),
            value: "Thu, 01 Jul 2027 00:00:00 GMT".into(),
            date: Some("2027-07-01T00:00:00+00:00".into()),
            request: "GET /api/v1/users".into(),
            first_seen: "2026-12-04T10:00:00+00:00".into(),
            last_seen: "2026-12-04T10:00:00+00:00".into(),
        });
        store.write(|tx| tx.save_signals("okta", &s)).unwrap();
        assert_eq!(store.signals("okta").unwrap().as_ref(), Some(&s));
        let t = Signals::default();
        store.write(|tx| tx.save_signals("okta", &t)).unwrap();
        assert_eq!(store.all_signals().unwrap().get("okta"), Some(&t));
    }
}
