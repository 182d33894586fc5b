//! HR sources' durable state (migration 12):
//! - `inbox`: webhook deliveries (and API-proxy records), stored before the sender gets
//!   its 2xx and processed from here; `(source, delivery_id)` is unique, so a replay finds
//!   the row and is refused; rows move `pending` → `done` | `failed` | `held`, the outcome
//!   as JSON. A finished row's body (HR data) is dropped after [`KEEP_BODIES_DAYS`].
//! - `source_stats`: counters per source (`received`, `rejected:REASON`, `polls`,
//!   `poll_errors`, `changes`, ...) with when each last moved; operational, not audited.
//! - `source_state`: a source's JSON state (a poller's cursor, its last error).
//! - `source_records`: a poller's snapshot, one digest per record, to tell changed
//!   records from unchanged ones.

use super::{Store, Tx};
use crate::Result;
use chrono::{DateTime, Utc};
use rusqlite::{OptionalExtension, params};

/// How long a processed delivery's body is kept (for `accessdesk source` inspection).
pub const KEEP_BODIES_DAYS: i64 = 7;

/// A delivery to store.
#[derive(Debug, Clone)]
pub struct NewDelivery {
    pub source: String,
    pub delivery_id: String,
    /// The vendor's event-type header, where the body does not say (GitHub's).
    pub event_type: Option<String>,
    pub body: Vec<u8>,
}

/// What storing a delivery did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stored {
    /// A new row, with its id.
    New(i64),
    /// The source already has a delivery with this id.
    Replay,
}

/// One stored delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboxRow {
    pub id: i64,
    pub source: String,
    pub delivery_id: String,
    pub received_at: String,
    pub event_type: Option<String>,
    pub body: Vec<u8>,
    pub status: String,
    pub attempts: i64,
    pub outcome: Option<String>,
}

/// One counter of one source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceStat {
    pub source: String,
    pub name: String,
    pub value: i64,
    pub at: String,
}

fn bump(conn: &rusqlite::Connection, source: &str, name: &str, by: i64, at: &str) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO source_stats (source, name, value, at) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT(source, name) DO UPDATE SET value = value + excluded.value, at = excluded.at",
    )?
    .execute(params![source, name, by, at])?;
    Ok(())
}

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<InboxRow> {
    Ok(InboxRow {
        id: r.get(0)?,
        source: r.get(1)?,
        delivery_id: r.get(2)?,
        received_at: r.get(3)?,
        event_type: r.get(4)?,
        body: r.get(5)?,
        status: r.get(6)?,
        attempts: r.get(7)?,
        outcome: r.get(8)?,
    })
}

const COLUMNS: &str =
    "id, source, delivery_id, received_at, event_type, body, status, attempts, outcome";

impl Tx<'_> {
    /// Store deliveries; each is [`Stored::New`] or, when its source already has that
    /// delivery id, [`Stored::Replay`] (counted as `rejected:replayed`, nothing stored).
    pub fn inbox_put(&mut self, items: &[NewDelivery]) -> Result<Vec<Stored>> {
        let at = super::queue::ts(self.now);
        let mut out = Vec::with_capacity(items.len());
        for d in items {
            let n = self
                .tx
                .prepare_cached(
                    "INSERT INTO inbox (source, delivery_id, received_at, event_type, body) VALUES (?1, ?2, ?3, ?4, ?5)
                     ON CONFLICT(source, delivery_id) DO NOTHING",
                )?
                .execute(params![d.source, d.delivery_id, at, d.event_type, d.body])?;
            if n == 1 {
                out.push(Stored::New(self.tx.last_insert_rowid()));
                bump(&self.tx, &d.source, "received", 1, &at)?;
            } else {
                out.push(Stored::Replay);
                bump(&self.tx, &d.source, "rejected:replayed", 1, &at)?;
            }
        }
        Ok(out)
    }

    /// Finish a delivery: `status` is `done`, `failed` or `held`, `outcome` says what it
    /// did (JSON).
    pub fn inbox_finish(
        &mut self,
        id: i64,
        status: &str,
        outcome: &serde_json::Value,
    ) -> Result<()> {
        self.tx
            .prepare_cached(
                "UPDATE inbox SET status = ?2, outcome = ?3, processed_at = ?4, attempts = attempts + 1
                 WHERE id = ?1",
            )?
            .execute(params![id, status, outcome.to_string(), super::queue::ts(self.now)])?;
        Ok(())
    }

    /// Add `by` to a source's counter `name`.
    pub fn bump_source_stat(&mut self, source: &str, name: &str, by: i64) -> Result<()> {
        bump(&self.tx, source, name, by, &super::queue::ts(self.now))
    }

    /// Replace a source's state.
    pub fn set_source_state(&mut self, source: &str, state: &serde_json::Value) -> Result<()> {
        self.tx.execute(
            "INSERT INTO source_state (source, state, updated_at) VALUES (?1, ?2, ?3)
             ON CONFLICT(source) DO UPDATE SET state = excluded.state, updated_at = excluded.updated_at",
            params![source, state.to_string(), super::queue::ts(self.now)],
        )?;
        Ok(())
    }

    /// Record a polled record's digest.
    pub fn set_record_digest(&mut self, source: &str, record_id: &str, digest: &str) -> Result<()> {
        self.set_record(source, record_id, digest, None)
    }

    /// Record a polled record's digest and, when known, the person it mapped to (kept
    /// when `person` is None).
    pub fn set_record(
        &mut self,
        source: &str,
        record_id: &str,
        digest: &str,
        person: Option<&str>,
    ) -> Result<()> {
        self.tx
            .prepare_cached(
                "INSERT INTO source_records (source, record_id, digest, seen_at, person_id) VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT(source, record_id) DO UPDATE SET digest = excluded.digest, seen_at = excluded.seen_at,
                   person_id = coalesce(excluded.person_id, source_records.person_id)",
            )?
            .execute(params![source, record_id, digest, super::queue::ts(self.now), person])?;
        Ok(())
    }

    /// Forget a polled record (it left the source's snapshot).
    pub fn drop_record_digest(&mut self, source: &str, record_id: &str) -> Result<()> {
        self.tx.execute(
            "DELETE FROM source_records WHERE source = ?1 AND record_id = ?2",
            params![source, record_id],
        )?;
        Ok(())
    }

    /// Drop the bodies of deliveries finished more than [`KEEP_BODIES_DAYS`] ago (their
    /// rows stay, so a late replay is still refused). Returns how many.
    pub fn inbox_prune(&mut self) -> Result<usize> {
        let before = super::queue::ts(self.now - chrono::Duration::days(KEEP_BODIES_DAYS));
        Ok(self.tx.execute(
            "UPDATE inbox SET body = x'' WHERE status != 'pending' AND processed_at < ?1 AND length(body) > 0",
            [before],
        )?)
    }
}

impl Store {
    /// Count a refused delivery (`rejected:REASON`) without storing anything else.
    pub fn count_rejection(&mut self, source: &str, reason: &str) -> Result<()> {
        let name = format!("rejected:{reason}");
        self.write(|tx| tx.bump_source_stat(source, &name, 1))
    }

    /// The oldest pending deliveries, at most `limit`.
    pub fn inbox_pending(&self, limit: usize) -> Result<Vec<InboxRow>> {
        let mut stmt = self.conn().prepare_cached(&format!(
            "SELECT {COLUMNS} FROM inbox WHERE status = 'pending' ORDER BY id LIMIT ?1"
        ))?;
        let rows = stmt.query_map([limit as i64], row)?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }

    /// One delivery by id.
    pub fn inbox_row(&self, id: i64) -> Result<Option<InboxRow>> {
        Ok(self
            .conn()
            .query_row(
                &format!("SELECT {COLUMNS} FROM inbox WHERE id = ?1"),
                [id],
                row,
            )
            .optional()?)
    }

    /// Deliveries by status for one source (or all), newest first.
    pub fn inbox_recent(&self, source: Option<&str>, limit: usize) -> Result<Vec<InboxRow>> {
        let mut stmt = self.conn().prepare_cached(&format!(
            "SELECT {COLUMNS} FROM inbox WHERE ?1 IS NULL OR source = ?1 ORDER BY id DESC LIMIT ?2"
        ))?;
        let rows = stmt.query_map(params![source, limit as i64], row)?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }

    /// How many deliveries wait, per source.
    pub fn inbox_backlog(&self) -> Result<Vec<(String, i64, Option<String>)>> {
        let mut stmt = self.conn().prepare_cached(
            "SELECT source, count(*), min(received_at) FROM inbox WHERE status = 'pending' GROUP BY source",
        )?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }

    /// Every source's counters.
    pub fn source_stats(&self) -> Result<Vec<SourceStat>> {
        let mut stmt = self.conn().prepare_cached(
            "SELECT source, name, value, at FROM source_stats ORDER BY source, name",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok(SourceStat {
                source: r.get(0)?,
                name: r.get(1)?,
                value: r.get(2)?,
                at: r.get(3)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }

    /// A source's state, if it has any.
    pub fn source_state(&self, source: &str) -> Result<Option<serde_json::Value>> {
        let text: Option<String> = self
            .conn()
            .query_row(
                "SELECT state FROM source_state WHERE source = ?1",
                [source],
                |r| r.get(0),
            )
            .optional()?;
        Ok(text.and_then(|t| serde_json::from_str(&t).ok()))
    }

    /// A polled record's digest from the last poll that saw it.
    pub fn record_digest(&self, source: &str, record_id: &str) -> Result<Option<String>> {
        Ok(self
            .conn()
            .prepare_cached(
                "SELECT digest FROM source_records WHERE source = ?1 AND record_id = ?2",
            )?
            .query_row(params![source, record_id], |r| r.get(0))
            .optional()?)
    }

    /// The person a source's record last mapped to.
    pub fn record_person(&self, source: &str, record_id: &str) -> Result<Option<String>> {
        Ok(self
            .conn()
            .prepare_cached(
                "SELECT person_id FROM source_records WHERE source = ?1 AND record_id = ?2",
            )?
            .query_row(params![source, record_id], |r| {
                r.get::<_, Option<String>>(0)
            })
            .optional()?
            .flatten())
    }

    /// Every record id of a source's snapshot.
    pub fn record_ids(&self, source: &str) -> Result<Vec<String>> {
        let mut stmt = self.conn().prepare_cached(
            "SELECT record_id FROM source_records WHERE source = ?1 ORDER BY record_id",
        )?;
        let rows = stmt.query_map([source], |r| r.get(0))?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }
}

/// When a time stored as text was, for lags.
pub fn parse_ts(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(source: &str, id: &str) -> NewDelivery {
        NewDelivery {
            source: source.into(),
            delivery_id: id.into(),
            event_type: None,
            body: b"{}".to_vec(),
        }
    }

    #[test]
    fn a_replay_is_refused_and_counted_and_processing_finishes_rows() {
        let mut s = Store::open_in_memory().unwrap();
        let r = s
            .write(|tx| tx.inbox_put(&[d("hr", "a"), d("hr", "b"), d("other", "a")]))
            .unwrap();
        assert!(r.iter().all(|x| matches!(x, Stored::New(_))), "{r:?}");
        let again = s.write(|tx| tx.inbox_put(&[d("hr", "a")])).unwrap();
        assert_eq!(again, vec![Stored::Replay]);
        let stats = s.source_stats().unwrap();
        let get = |src: &str, n: &str| {
            stats
                .iter()
                .find(|x| x.source == src && x.name == n)
                .map(|x| x.value)
        };
        assert_eq!(get("hr", "received"), Some(2));
        assert_eq!(get("hr", "rejected:replayed"), Some(1));
        assert_eq!(get("other", "received"), Some(1));
        let pending = s.inbox_pending(10).unwrap();
        assert_eq!(pending.len(), 3);
        let first = pending[0].id;
        s.write(|tx| tx.inbox_finish(first, "done", &serde_json::json!({"ok": true})))
            .unwrap();
        assert_eq!(s.inbox_pending(10).unwrap().len(), 2);
        let row = s.inbox_row(first).unwrap().unwrap();
        assert_eq!((row.status.as_str(), row.attempts), ("done", 1));
        assert_eq!(
            s.inbox_backlog().unwrap(),
            vec![
                ("hr".to_string(), 1, Some(row.received_at.clone())),
                ("other".to_string(), 1, Some(row.received_at.clone()))
            ]
        );
    }

    #[test]
    fn source_state_and_digests_round_trip() {
        let mut s = Store::open_in_memory().unwrap();
        assert_eq!(s.source_state("b").unwrap(), None);
        s.write(|tx| {
            tx.set_source_state("b", &serde_json::json!({"since": "x"}))?;
            tx.set_record_digest("b", "1", "aa")?;
            tx.set_record("b", "2", "bb", Some("E2"))?;
            tx.set_record("b", "1", "cc", Some("E1"))?;
            tx.set_record_digest("b", "1", "dd")?;
            tx.set_record("b", "2", "ee", None)
        })
        .unwrap();
        // A digest without a person keeps the person recorded before.
        assert_eq!(s.record_person("b", "1").unwrap().as_deref(), Some("E1"));
        assert_eq!(s.record_person("b", "2").unwrap().as_deref(), Some("E2"));
        assert_eq!(s.record_person("b", "3").unwrap(), None);
        s.write(|tx| tx.drop_record_digest("b", "2")).unwrap();
        assert_eq!(s.source_state("b").unwrap().unwrap()["since"], "x");
        assert_eq!(s.record_digest("b", "1").unwrap().as_deref(), Some("dd"));
        assert_eq!(s.record_ids("b").unwrap(), vec!["1".to_string()]);
    }
}
