//! Actual access: accounts and memberships as last observed in each target system (by a
//! reconciliation read, or by an operation that succeeded).

use super::{NewAuditEvent, Store, Tx};
use crate::Result;
use rusqlite::{OptionalExtension, params};
use serde::Serialize;
use serde_json::json;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AccountRow {
    pub system: String,
    pub person_id: Option<String>,
    pub login: String,
    pub external_id: Option<String>,
    pub active: bool,
}

impl Tx<'_> {
    /// Record an account as it exists in a system. Audited when it is new or changed.
    pub fn upsert_account(&mut self, a: &AccountRow, actor: &str) -> Result<bool> {
        let old: Option<(Option<String>, Option<String>, bool)> = self
            .tx
            .prepare_cached(
                "SELECT person_id, external_id, active FROM accounts WHERE system = ?1 AND login = ?2",
            )?
            .query_row(params![a.system, a.login], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })
            .optional()?;
        if let Some((p, e, act)) = &old
            && *p == a.person_id
            && *e == a.external_id
            && *act == a.active
        {
            return Ok(false);
        }
        let now = self.now.to_rfc3339();
        self.tx.prepare_cached(
            "INSERT INTO accounts (system, person_id, login, external_id, active, observed_at, source) VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'recorded')
             ON CONFLICT(system, login) DO UPDATE SET person_id = excluded.person_id, external_id = excluded.external_id,
               active = excluded.active, observed_at = excluded.observed_at, source = 'recorded'",
        )?
        .execute(params![a.system, a.person_id, a.login, a.external_id, a.active, now])?;
        let action = match &old {
            None => "account.observed",
            Some((_, _, was)) if *was != a.active => {
                if a.active {
                    "account.activated"
                } else {
                    "account.deactivated"
                }
            }
            Some(_) => "account.updated",
        };
        self.audit(NewAuditEvent {
            actor,
            action,
            subject: a.person_id.as_deref().unwrap_or(&a.login),
            details: json!({"system": a.system, "login": a.login, "external_id": a.external_id, "active": a.active}),
        })?;
        Ok(true)
    }

    /// Record that an account does (or no longer does) hold an entitlement. Audited when
    /// it changes anything.
    pub fn set_observed(
        &mut self,
        system: &str,
        login: &str,
        person_id: Option<&str>,
        entitlement: &str,
        present: bool,
        actor: &str,
    ) -> Result<bool> {
        let changed = self.write_through_access(system, login, person_id, entitlement, present)?;
        if changed {
            self.audit(NewAuditEvent {
                actor,
                action: if present {
                    "access.observed"
                } else {
                    "access.gone"
                },
                subject: person_id.unwrap_or(login),
                details: json!({"system": system, "login": login, "entitlement": entitlement}),
            })?;
        }
        Ok(changed)
    }

    /// The effect of an operation that just succeeded, written through so the next plan
    /// sees it. Not audited on its own: the operation's `succeeded` event, in the same
    /// transaction, names it. Returns whether anything changed.
    pub fn write_through_access(
        &mut self,
        system: &str,
        login: &str,
        person_id: Option<&str>,
        entitlement: &str,
        present: bool,
    ) -> Result<bool> {
        let changed = if present {
            self.tx.prepare_cached(
                "INSERT INTO observed_access (system, account_login, person_id, entitlement, observed_at) VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT(system, account_login, entitlement) DO NOTHING",
            )?
            .execute(params![system, login, person_id, entitlement, self.now.to_rfc3339()])?
        } else {
            self.tx
                .prepare_cached("DELETE FROM observed_access WHERE system = ?1 AND account_login = ?2 AND entitlement = ?3")?
                .execute(params![system, login, entitlement])?
        };
        Ok(changed > 0)
    }

    /// Load many accounts at once (a reconciliation snapshot or a benchmark). One audit event.
    pub fn bulk_insert_accounts<'a>(
        &mut self,
        rows: impl Iterator<Item = (&'a str, &'a str, &'a str, bool)>,
        actor: &str,
    ) -> Result<usize> {
        let now = self.now.to_rfc3339();
        let mut n = 0;
        {
            let mut stmt = self.tx.prepare_cached(
                "INSERT INTO accounts (system, person_id, login, external_id, active, observed_at) VALUES (?1, ?2, ?3, ?3, ?4, ?5)
                 ON CONFLICT(system, login) DO UPDATE SET active = excluded.active",
            )?;
            for (system, person, login, active) in rows {
                stmt.execute(params![system, person, login, active, now])?;
                n += 1;
            }
        }
        self.audit(NewAuditEvent {
            actor,
            action: "accounts.bulk_observed",
            subject: "accounts",
            details: json!({"count": n}),
        })?;
        Ok(n)
    }

    /// Load many observed memberships at once. One audit event.
    pub fn bulk_insert_observed<'a>(
        &mut self,
        rows: impl Iterator<Item = (&'a str, &'a str, &'a str, &'a str)>,
        actor: &str,
    ) -> Result<usize> {
        let now = self.now.to_rfc3339();
        let mut n = 0;
        {
            let mut stmt = self.tx.prepare_cached(
                "INSERT INTO observed_access (system, account_login, person_id, entitlement, observed_at) VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT(system, account_login, entitlement) DO NOTHING",
            )?;
            for (system, login, person, ent) in rows {
                stmt.execute(params![system, login, person, ent, now])?;
                n += 1;
            }
        }
        self.audit(NewAuditEvent {
            actor,
            action: "access.bulk_observed",
            subject: "observed_access",
            details: json!({"count": n}),
        })?;
        Ok(n)
    }
}

impl Tx<'_> {
    /// Record the attributes just written to a person's account in a system.
    pub fn set_account_attrs(
        &mut self,
        system: &str,
        person: &str,
        attrs: &std::collections::BTreeMap<String, String>,
    ) -> Result<()> {
        let json = serde_json::to_string(attrs).unwrap_or_else(|_| "{}".into());
        self.tx
            .prepare_cached(
                "UPDATE accounts SET attrs = ?3, attrs_at = ?4 WHERE system = ?1 AND person_id = ?2",
            )?
            .execute(params![system, person, json, self.now.to_rfc3339()])?;
        Ok(())
    }
}

impl Store {
    pub fn account_for(&self, system: &str, person_id: &str) -> Result<Option<AccountRow>> {
        account_for(&self.conn, system, person_id)
    }

    /// The person accessdesk links the account with this external id to, if any.
    pub fn account_owner_by_external_id(
        &self,
        system: &str,
        external_id: &str,
    ) -> Result<Option<String>> {
        Ok(self
            .conn
            .prepare_cached(
                "SELECT person_id FROM accounts WHERE system = ?1 AND external_id = ?2 AND person_id IS NOT NULL LIMIT 1",
            )?
            .query_row(params![system, external_id], |r| r.get(0))
            .optional()?)
    }

    /// The attributes accessdesk last wrote on the person's account in `system` (None:
    /// not recorded; an unreadable record reads as empty).
    pub fn account_attrs(
        &self,
        system: &str,
        person_id: &str,
    ) -> Result<Option<std::collections::BTreeMap<String, String>>> {
        let raw: Option<Option<String>> = self
            .conn
            .prepare_cached(
                "SELECT attrs FROM accounts WHERE system = ?1 AND person_id = ?2 LIMIT 1",
            )?
            .query_row(params![system, person_id], |r| r.get(0))
            .optional()?;
        Ok(raw
            .flatten()
            .map(|a| serde_json::from_str(&a).unwrap_or_default()))
    }
}

impl Tx<'_> {
    pub fn account_for(&self, system: &str, person_id: &str) -> Result<Option<AccountRow>> {
        account_for(&self.tx, system, person_id)
    }

    /// Record that the account with this external id is no longer active (an orphan
    /// accessdesk deactivated): what it did since the last read, until the next.
    pub fn set_account_inactive_by_external_id(
        &mut self,
        system: &str,
        external_id: &str,
    ) -> Result<()> {
        self.tx
            .prepare_cached(
                "UPDATE accounts SET active = 0, source = 'recorded', observed_at = ?3 WHERE system = ?1 AND external_id = ?2",
            )?
            .execute(params![system, external_id, super::queue::ts(self.now)])?;
        Ok(())
    }
}

fn account_for(
    conn: &rusqlite::Connection,
    system: &str,
    person_id: &str,
) -> Result<Option<AccountRow>> {
    {
        Ok(conn
            .prepare_cached(
                "SELECT system, person_id, login, external_id, active FROM accounts WHERE system = ?1 AND person_id = ?2 LIMIT 1",
            )?
            .query_row(
                params![system, person_id],
                |r| Ok(AccountRow { system: r.get(0)?, person_id: r.get(1)?, login: r.get(2)?, external_id: r.get(3)?, active: r.get(4)? }),
            )
            .optional()?)
    }
}

impl Store {
    /// A person's actual memberships with where each came from: `observed` (read from
    /// the target) or `recorded` (an operation that succeeded), and when.
    pub fn actual_for(&self, person_id: &str) -> Result<Vec<(String, String, String)>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT entitlement, source, observed_at FROM observed_access WHERE person_id = ?1 ORDER BY entitlement",
        )?;
        let rows = stmt.query_map([person_id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// The account of `system` with this external id or login, as the store holds it
    /// (the last read, and what operations did since).
    pub fn account_in(
        &self,
        system: &str,
        external_id: &str,
        login: &str,
    ) -> Result<Option<AccountRow>> {
        Ok(self
            .conn
            .prepare_cached(
                "SELECT system, person_id, login, external_id, active FROM accounts
                 WHERE system = ?1 AND (external_id = ?2 OR login = ?3) LIMIT 1",
            )?
            .query_row(params![system, external_id, login], |r| {
                Ok(AccountRow {
                    system: r.get(0)?,
                    person_id: r.get(1)?,
                    login: r.get(2)?,
                    external_id: r.get(3)?,
                    active: r.get(4)?,
                })
            })
            .optional()?)
    }

    /// The entitlements the store holds for one account of `system`, sorted.
    pub fn access_of_account(&self, system: &str, login: &str) -> Result<Vec<String>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT entitlement FROM observed_access WHERE system = ?1 AND account_login = ?2 ORDER BY entitlement",
        )?;
        let rows = stmt.query_map(params![system, login], |r| r.get(0))?;
        Ok(rows.collect::<rusqlite::Result<Vec<String>>>()?)
    }

    pub fn observed_for(&self, person_id: &str) -> Result<Vec<String>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT entitlement FROM observed_access WHERE person_id = ?1 ORDER BY entitlement",
        )?;
        let rows = stmt.query_map([person_id], |r| r.get(0))?;
        Ok(rows.collect::<rusqlite::Result<Vec<String>>>()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accounts_and_observed_are_audited_only_on_change() {
        let mut s = Store::open_in_memory().unwrap();
        s.write(|tx| tx.upsert_person(&crate::model::Person::new("E1", "A", "B", "a@x.io"), "t"))
            .unwrap();
        let a = AccountRow {
            system: "okta".into(),
            person_id: Some("E1".into()),
            login: "a@x".into(),
            external_id: Some("00u1".into()),
            active: true,
        };
        assert!(s.write(|tx| tx.upsert_account(&a, "t")).unwrap());
        assert!(!s.write(|tx| tx.upsert_account(&a, "t")).unwrap());
        let mut b = a.clone();
        b.active = false;
        assert!(s.write(|tx| tx.upsert_account(&b, "t")).unwrap());
        assert!(
            s.write(|tx| tx.set_observed("okta", "a@x", Some("E1"), "okta:group:eng", true, "t"))
                .unwrap()
        );
        assert!(
            !s.write(|tx| tx.set_observed("okta", "a@x", Some("E1"), "okta:group:eng", true, "t"))
                .unwrap()
        );
        assert_eq!(
            s.observed_for("E1").unwrap(),
            vec!["okta:group:eng".to_string()]
        );
        assert!(
            s.write(|tx| tx.set_observed("okta", "a@x", Some("E1"), "okta:group:eng", false, "t"))
                .unwrap()
        );
        assert_eq!(s.audit_count().unwrap(), 1 + 4);
        assert!(!s.account_for("okta", "E1").unwrap().unwrap().active);
    }
}
