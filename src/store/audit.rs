//! The audit log: append-only and hash-chained.
//!
//! Each event's `hash` is SHA-256 over its predecessor's hash and its own fields, encoded
//! as a JSON array so field boundaries are unambiguous. The first event's predecessor is
//! [`GENESIS`]. The newest hash is also kept in `meta.audit_head`, so deleting events from
//! the end is detected too. UPDATE and DELETE are refused by triggers; `verify` catches
//! anyone who goes around them.

use super::{Store, Tx};
use crate::Result;
use chrono::{DateTime, Utc};
use rusqlite::{OptionalExtension, params};
use serde::Serialize;
use sha2::{Digest, Sha256};

pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// An event to append.
#[derive(Debug, Clone)]
pub struct NewAuditEvent<'a> {
    /// Who did it: a user (`cli:alice`), or the engine (`engine`).
    pub actor: &'a str,
    /// What happened, dotted: `person.created`, `grant.added`, `secret.set`, ...
    pub action: &'a str,
    /// What it happened to: a person id, `system:kind:name`, an operation id.
    pub subject: &'a str,
    /// Structured detail. Must never contain a secret.
    pub details: serde_json::Value,
}

/// A stored event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditEvent {
    pub seq: i64,
    pub ts: String,
    pub actor: String,
    pub action: String,
    pub subject: String,
    pub details: serde_json::Value,
    pub prev_hash: String,
    pub hash: String,
}

/// The first event that fails verification, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditProblem {
    pub seq: i64,
    pub reason: String,
}

impl std::fmt::Display for AuditProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "first bad event: #{}: {}", self.seq, self.reason)
    }
}

pub fn event_hash(
    prev: &str,
    seq: i64,
    ts: &str,
    actor: &str,
    action: &str,
    subject: &str,
    details: &str,
) -> String {
    let canonical = serde_json::json!([prev, seq, ts, actor, action, subject, details]).to_string();
    hex::encode(Sha256::digest(canonical.as_bytes()))
}

impl Tx<'_> {
    /// Append one audit event in this transaction. Returns its sequence number.
    pub fn audit(&mut self, ev: NewAuditEvent<'_>) -> Result<i64> {
        let (last_seq, prev) = match self.audit_head.take() {
            Some(h) => h,
            None => self
                .tx
                .prepare_cached("SELECT seq, hash FROM audit_events ORDER BY seq DESC LIMIT 1")?
                .query_row([], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()?
                .unwrap_or((0, GENESIS.to_string())),
        };
        let seq = last_seq + 1;
        let ts = self
            .now
            .to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
        let details = ev.details.to_string();
        let hash = event_hash(&prev, seq, &ts, ev.actor, ev.action, ev.subject, &details);
        self.tx
            .prepare_cached(
                "INSERT INTO audit_events (seq, ts, actor, action, subject, details, prev_hash, hash)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            )?
            .execute(params![
                seq, ts, ev.actor, ev.action, ev.subject, details, prev, hash
            ])?;
        self.audit_head = Some((seq, hash));
        Ok(seq)
    }

    /// Write the chain's head to `meta.audit_head` (once per transaction, before commit).
    pub(crate) fn flush_audit_head(&mut self) -> Result<()> {
        if let Some((seq, hash)) = &self.audit_head {
            self.tx
                .prepare_cached(
                    "INSERT INTO meta (key, value) VALUES ('audit_head', ?1)
                     ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                )?
                .execute(params![format!("{seq}:{hash}")])?;
        }
        Ok(())
    }
}

fn row_to_event(r: &rusqlite::Row<'_>) -> rusqlite::Result<AuditEvent> {
    let details: String = r.get(5)?;
    Ok(AuditEvent {
        seq: r.get(0)?,
        ts: r.get(1)?,
        actor: r.get(2)?,
        action: r.get(3)?,
        subject: r.get(4)?,
        details: serde_json::from_str(&details).unwrap_or(serde_json::Value::String(details)),
        prev_hash: r.get(6)?,
        hash: r.get(7)?,
    })
}

impl Store {
    /// Walk the chain in order. `Ok(count)` when intact; the first bad event otherwise.
    pub fn audit_verify(&self) -> Result<std::result::Result<u64, AuditProblem>> {
        let mut stmt = self.conn.prepare(
            "SELECT seq, ts, actor, action, subject, details, prev_hash, hash FROM audit_events ORDER BY seq",
        )?;
        let mut rows = stmt.query([])?;
        let mut expected_prev = GENESIS.to_string();
        let mut expected_seq = 1i64;
        let mut count = 0u64;
        while let Some(r) = rows.next()? {
            let seq: i64 = r.get(0)?;
            let ts: String = r.get(1)?;
            let actor: String = r.get(2)?;
            let action: String = r.get(3)?;
            let subject: String = r.get(4)?;
            let details: String = r.get(5)?;
            let prev: String = r.get(6)?;
            let hash: String = r.get(7)?;
            if seq != expected_seq {
                return Ok(Err(AuditProblem {
                    seq,
                    reason: format!(
                        "expected event #{expected_seq} here; events #{expected_seq}..#{} are missing",
                        seq - 1
                    ),
                }));
            }
            if prev != expected_prev {
                return Ok(Err(AuditProblem {
                    seq,
                    reason: "its prev_hash does not match the previous event's hash (events deleted or reordered)".into(),
                }));
            }
            let recomputed = event_hash(&prev, seq, &ts, &actor, &action, &subject, &details);
            if recomputed != hash {
                return Ok(Err(AuditProblem {
                    seq,
                    reason: "its content does not match its hash (the event was edited)".into(),
                }));
            }
            expected_prev = hash;
            expected_seq += 1;
            count += 1;
        }
        let head: Option<String> = self
            .conn
            .query_row("SELECT value FROM meta WHERE key = 'audit_head'", [], |r| {
                r.get(0)
            })
            .optional()?;
        if let Some(head) = head {
            let (head_seq, head_hash) = head.split_once(':').unwrap_or(("0", ""));
            let head_seq: i64 = head_seq.parse().unwrap_or(0);
            if head_seq != expected_seq - 1 || head_hash != expected_prev {
                return Ok(Err(AuditProblem {
                    seq: (expected_seq).min(head_seq.max(1)),
                    reason: format!(
                        "the log ends at #{} but its recorded head is #{head_seq} (events removed from the end)",
                        expected_seq - 1
                    ),
                }));
            }
        } else if count > 0 {
            return Ok(Err(AuditProblem {
                seq: 1,
                reason: "the recorded chain head is missing".into(),
            }));
        }
        Ok(Ok(count))
    }

    /// Events with `since <= ts < until`, in order.
    pub fn audit_events(
        &self,
        since: Option<DateTime<Utc>>,
        until: Option<DateTime<Utc>>,
    ) -> Result<Vec<AuditEvent>> {
        let fmt = |d: DateTime<Utc>| d.to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
        let since = since.map(fmt).unwrap_or_default();
        let until = until.map(fmt).unwrap_or_else(|| "9999".into());
        let mut stmt = self.conn.prepare(
            "SELECT seq, ts, actor, action, subject, details, prev_hash, hash FROM audit_events
             WHERE ts >= ?1 AND ts < ?2 ORDER BY seq",
        )?;
        let rows = stmt.query_map(params![since, until], row_to_event)?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }

    /// The newest event's sequence number (0 for an empty log).
    pub fn audit_head_seq(&self) -> Result<i64> {
        Ok(self
            .conn
            .prepare_cached("SELECT COALESCE(max(seq), 0) FROM audit_events")?
            .query_row([], |r| r.get(0))?)
    }

    pub fn audit_count(&self) -> Result<i64> {
        Ok(self
            .conn
            .query_row("SELECT count(*) FROM audit_events", [], |r| r.get(0))?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn store_with(n: usize) -> Store {
        let mut s = Store::open_in_memory().unwrap();
        for i in 0..n {
            s.write(|tx| {
                tx.audit(NewAuditEvent {
                    actor: "test",
                    action: "thing.done",
                    subject: &format!("s{i}"),
                    details: json!({"i": i}),
                })
            })
            .unwrap();
        }
        s
    }

    fn raw(s: &Store, sql: &str) {
        s.conn()
            .execute_batch(&format!(
                "DROP TRIGGER audit_no_update; DROP TRIGGER audit_no_delete; {sql}"
            ))
            .unwrap();
    }

    #[test]
    fn intact_chain_verifies() {
        let s = store_with(5);
        assert_eq!(s.audit_verify().unwrap(), Ok(5));
        assert_eq!(store_with(0).audit_verify().unwrap(), Ok(0));
    }

    #[test]
    fn triggers_refuse_update_and_delete() {
        let s = store_with(2);
        assert!(
            s.conn()
                .execute("UPDATE audit_events SET actor = 'x'", [])
                .is_err()
        );
        assert!(s.conn().execute("DELETE FROM audit_events", []).is_err());
    }

    #[test]
    fn edit_is_caught_at_that_event() {
        let s = store_with(5);
        raw(
            &s,
            "UPDATE audit_events SET subject = 'forged' WHERE seq = 3;",
        );
        let p = s.audit_verify().unwrap().unwrap_err();
        assert_eq!(p.seq, 3);
        assert!(p.reason.contains("edited"));
    }

    #[test]
    fn deletion_in_the_middle_is_caught() {
        let s = store_with(5);
        raw(&s, "DELETE FROM audit_events WHERE seq = 2;");
        let p = s.audit_verify().unwrap().unwrap_err();
        assert_eq!(p.seq, 3);
    }

    #[test]
    fn deletion_at_the_end_is_caught() {
        let s = store_with(5);
        raw(&s, "DELETE FROM audit_events WHERE seq = 5;");
        let p = s.audit_verify().unwrap().unwrap_err();
        assert!(p.reason.contains("removed from the end"), "{p}");
    }

    #[test]
    fn reorder_is_caught() {
        let s = store_with(5);
        // Swap the contents of events 2 and 3, keeping their seq numbers.
        raw(
            &s,
            "UPDATE audit_events SET seq = -2 WHERE seq = 2;
                 UPDATE audit_events SET seq = 2 WHERE seq = 3;
                 UPDATE audit_events SET seq = 3 WHERE seq = -2;",
        );
        let p = s.audit_verify().unwrap().unwrap_err();
        assert_eq!(p.seq, 2);
    }

    #[test]
    fn rolled_back_write_leaves_no_event() {
        let mut s = store_with(1);
        let r: Result<()> = s.write(|tx| {
            tx.audit(NewAuditEvent {
                actor: "t",
                action: "a",
                subject: "s",
                details: json!({}),
            })?;
            Err(crate::Error::Failed("boom".into()))
        });
        assert!(r.is_err());
        assert_eq!(s.audit_count().unwrap(), 1);
        assert_eq!(s.audit_verify().unwrap(), Ok(1));
    }
}
