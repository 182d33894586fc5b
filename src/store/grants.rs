//! Intended grants: what policy says each person should have.

use super::{NewAuditEvent, Store, Tx};
use crate::Result;
use crate::model::Grant;
use rusqlite::params;
use serde_json::json;
use std::collections::BTreeMap;

/// A stored intended grant, as read back for a diff.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IntendedRow {
    pub person_id: String,
    pub entitlement: String,
    pub rule: String,
    pub requires_approval: bool,
    pub expires_at: Option<String>,
}

impl Tx<'_> {
    /// Make `grants` the complete set of intended grants for one person. Each added or
    /// removed grant is audited. Returns (added, removed).
    pub fn replace_intended_grants(
        &mut self,
        person_id: &str,
        grants: &[Grant],
        actor: &str,
    ) -> Result<(usize, usize)> {
        let mut current: BTreeMap<String, (String, Option<String>)> = BTreeMap::new();
        {
            let mut stmt = self.tx.prepare_cached(
                "SELECT entitlement, rule, expires_at FROM intended_grants WHERE person_id = ?1",
            )?;
            let rows = stmt.query_map([person_id], |r| {
                Ok((r.get::<_, String>(0)?, r.get(1)?, r.get(2)?))
            })?;
            for row in rows {
                let (e, rule, exp) = row?;
                current.insert(e, (rule, exp));
            }
        }
        let mut added = 0;
        let mut wanted = BTreeMap::new();
        for g in grants {
            let ent = g.entitlement.to_string();
            let exp = g.expires_at.map(|d| d.to_rfc3339());
            wanted.insert(ent.clone(), ());
            match current.get(&ent) {
                Some((rule, e)) if *rule == g.rule && *e == exp => continue,
                _ => {}
            }
            let is_new = !current.contains_key(&ent);
            self.tx.prepare_cached(
                "INSERT INTO intended_grants (person_id, entitlement, rule, requires_approval, expires_at)
                 VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT(person_id, entitlement) DO UPDATE SET rule = excluded.rule,
                   requires_approval = excluded.requires_approval, expires_at = excluded.expires_at",
            )?
            .execute(params![person_id, ent, g.rule, g.requires_approval, exp])?;
            if is_new {
                added += 1;
            }
            self.audit(NewAuditEvent {
                actor,
                action: if is_new { "grant.intended" } else { "grant.changed" },
                subject: person_id,
                details: json!({"entitlement": ent, "rule": g.rule, "expires_at": exp, "requires_approval": g.requires_approval}),
            })?;
        }
        let mut removed = 0;
        for (ent, (rule, _)) in &current {
            if wanted.contains_key(ent) {
                continue;
            }
            self.tx
                .prepare_cached(
                    "DELETE FROM intended_grants WHERE person_id = ?1 AND entitlement = ?2",
                )?
                .execute(params![person_id, ent])?;
            removed += 1;
            self.audit(NewAuditEvent {
                actor,
                action: "grant.withdrawn",
                subject: person_id,
                details: json!({"entitlement": ent, "rule": rule}),
            })?;
        }
        Ok((added, removed))
    }
}

impl Store {
    /// Every intended grant, ordered by person then entitlement (the diff's input).
    pub fn all_intended(&self) -> Result<Vec<IntendedRow>> {
        let mut stmt = self.conn.prepare(
            "SELECT person_id, entitlement, rule, requires_approval, expires_at FROM intended_grants
             ORDER BY person_id, entitlement",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok(IntendedRow {
                person_id: r.get(0)?,
                entitlement: r.get(1)?,
                rule: r.get(2)?,
                requires_approval: r.get(3)?,
                expires_at: r.get(4)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }

    pub fn intended_for(&self, person_id: &str) -> Result<Vec<IntendedRow>> {
        Ok(self.all_intended_where(person_id)?.into_iter().collect())
    }

    fn all_intended_where(&self, person_id: &str) -> Result<Vec<IntendedRow>> {
        let mut stmt = self.conn.prepare(
            "SELECT person_id, entitlement, rule, requires_approval, expires_at FROM intended_grants
             WHERE person_id = ?1 ORDER BY entitlement",
        )?;
        let rows = stmt.query_map([person_id], |r| {
            Ok(IntendedRow {
                person_id: r.get(0)?,
                entitlement: r.get(1)?,
                rule: r.get(2)?,
                requires_approval: r.get(3)?,
                expires_at: r.get(4)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Person;

    fn grant(p: &str, e: &str, rule: &str) -> Grant {
        Grant {
            person_id: p.into(),
            entitlement: e.parse().unwrap(),
            rule: rule.into(),
            requires_approval: false,
            expires_at: None,
        }
    }

    #[test]
    fn replace_adds_removes_and_is_idempotent() {
        let mut s = Store::open_in_memory().unwrap();
        s.write(|tx| tx.upsert_person(&Person::new("E1", "A", "B", "a@x"), "t"))
            .unwrap();
        let g1 = vec![
            grant("E1", "okta:group:eng", "r1"),
            grant("E1", "github:team:eng", "r2"),
        ];
        assert_eq!(
            s.write(|tx| tx.replace_intended_grants("E1", &g1, "t"))
                .unwrap(),
            (2, 0)
        );
        let before = s.audit_count().unwrap();
        assert_eq!(
            s.write(|tx| tx.replace_intended_grants("E1", &g1, "t"))
                .unwrap(),
            (0, 0)
        );
        assert_eq!(s.audit_count().unwrap(), before, "no-op wrote audit events");
        let g2 = vec![grant("E1", "okta:group:eng", "r1")];
        assert_eq!(
            s.write(|tx| tx.replace_intended_grants("E1", &g2, "t"))
                .unwrap(),
            (0, 1)
        );
        let rows = s.intended_for("E1").unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].entitlement, "okta:group:eng");
        assert_eq!(s.audit_verify().unwrap(), Ok(before as u64 + 1));
    }
}
