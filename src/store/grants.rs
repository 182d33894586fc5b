//! Intended grants: what policy says each person should have.

use super::scan::{Interner, text};
use super::{NewAuditEvent, Store, Tx};
use crate::Result;
use crate::model::Grant;
use rusqlite::params;
use serde_json::json;
use std::collections::BTreeMap;
use std::sync::Arc;

/// A stored intended grant, as read back for a diff. Strings are shared: a person's rows
/// share one id, and entitlement and rule names are interned across the whole read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IntendedRow {
    pub person_id: Arc<str>,
    pub entitlement: Arc<str>,
    pub rule: Arc<str>,
    pub requires_approval: bool,
    pub expires_at: Option<String>,
}

/// Read intended rows from a query whose columns are
/// (person_id, entitlement, rule, requires_approval, expires_at), ordered by person.
fn read_intended(
    stmt: &mut rusqlite::Statement<'_>,
    params: impl rusqlite::Params,
) -> Result<Vec<IntendedRow>> {
    let mut out = Vec::new();
    let mut interner = Interner::default();
    let mut last_person: Option<Arc<str>> = None;
    let mut rows = stmt.query(params)?;
    while let Some(r) = rows.next()? {
        let pid = text(r, 0)?;
        let person_id = match &last_person {
            Some(p) if &**p == pid => p.clone(),
            _ => {
                let p: Arc<str> = Arc::from(pid);
                last_person = Some(p.clone());
                p
            }
        };
        out.push(IntendedRow {
            person_id,
            entitlement: interner.get(text(r, 1)?),
            rule: interner.get(text(r, 2)?),
            requires_approval: r.get(3)?,
            expires_at: r.get(4)?,
        });
    }
    Ok(out)
}

impl Tx<'_> {
    /// Make `grants` the complete set of intended grants for one person. Each added or
    /// removed grant is audited. Returns (added, removed).
    /// Record what each approval-needing grant rests on (see `PolicySet::grant_inputs`).
    pub fn set_grant_inputs(
        &mut self,
        policies: &crate::policy::PolicySet,
        person: &crate::model::Person,
        grants: &[Grant],
    ) -> Result<()> {
        for g in grants.iter().filter(|g| g.requires_approval) {
            let inputs = policies.grant_inputs(&g.rule, person);
            self.tx
                .prepare_cached(
                    "UPDATE intended_grants SET inputs = ?3 WHERE person_id = ?1 AND entitlement = ?2",
                )?
                .execute(rusqlite::params![person.hris_id, g.entitlement.to_string(), inputs])?;
        }
        Ok(())
    }

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
            // Same entitlement from the same rule: keep the stored row. A time-bound grant's
            // clock starts when it was first intended, not at every re-evaluation.
            if matches!(current.get(&ent), Some((rule, _)) if *rule == g.rule) {
                continue;
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
        read_intended(&mut stmt, [])
    }

    /// One person's intended grants, ordered by entitlement.
    pub fn intended_for(&self, person_id: &str) -> Result<Vec<IntendedRow>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT person_id, entitlement, rule, requires_approval, expires_at FROM intended_grants
             WHERE person_id = ?1 ORDER BY entitlement",
        )?;
        read_intended(&mut stmt, [person_id])
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
        assert_eq!(&*rows[0].entitlement, "okta:group:eng");
        assert_eq!(s.audit_verify().unwrap(), Ok(before as u64 + 1));
    }
}

/// One row for a bulk load of intended grants.
#[derive(Debug, Clone, Copy)]
pub struct BulkGrant<'a> {
    pub person_id: &'a str,
    pub entitlement: &'a str,
    pub rule: &'a str,
    pub requires_approval: bool,
    pub expires_at: Option<&'a str>,
}

impl Tx<'_> {
    /// Load many intended grants at once (a whole-org recompute into an empty table).
    /// Audited as one event carrying the count, in the same transaction.
    pub fn bulk_insert_intended<'a>(
        &mut self,
        grants: impl Iterator<Item = BulkGrant<'a>>,
        actor: &str,
    ) -> Result<usize> {
        let mut n = 0;
        {
            let mut stmt = self.tx.prepare_cached(
                "INSERT INTO intended_grants (person_id, entitlement, rule, requires_approval, expires_at)
                 VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT(person_id, entitlement) DO UPDATE SET rule = excluded.rule,
                   requires_approval = excluded.requires_approval, expires_at = excluded.expires_at",
            )?;
            for g in grants {
                stmt.execute(params![
                    g.person_id,
                    g.entitlement,
                    g.rule,
                    g.requires_approval,
                    g.expires_at
                ])?;
                n += 1;
            }
        }
        self.audit(NewAuditEvent {
            actor,
            action: "grants.bulk_loaded",
            subject: "intended_grants",
            details: json!({"count": n}),
        })?;
        Ok(n)
    }
}
