//! Identity: which login each person holds in each system, which accounts are linked to
//! whom, and the accounts we refused to attach to anyone (identity conflicts).
//!
//! - A login is *assigned* once per (system, person) and never recomputed; a leaver's row
//!   stays, so their login stays reserved and a later same-named hire gets another.
//! - A login is *taken* when another person holds it here, or an account with it is
//!   known in that system and is not this person's.
//! - Linking an account to a person (the engine after proof, or an admin with `account
//!   link`) and unlinking are audited.

use super::access::AccountRow;
use super::{NewAuditEvent, Store, Tx};
use crate::Result;
use crate::model::login::login_key;
use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;
use serde_json::json;

/// A person's assigned login in one system.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LoginRow {
    pub system: String,
    pub person_id: String,
    pub login: String,
    pub assigned_at: String,
    /// When accessdesk first sent the create for this login (our record of creating it).
    pub create_sent_at: Option<String>,
}

/// An account accessdesk would not attach to a person, because the target did not prove
/// it was theirs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IdentityConflict {
    pub id: i64,
    pub system: String,
    /// The person who wanted the login.
    pub person_id: String,
    pub login: String,
    /// The existing account in the target.
    pub external_id: Option<String>,
    /// The HR id the existing account carries, if any.
    pub owner_hris_id: Option<String>,
    pub detected_at: String,
    pub resolved_at: Option<String>,
    pub resolution: Option<String>,
}

/// Who holds a login in a system, when it is not the person asking.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Holder {
    /// Assigned to (or linked to) another person.
    Person(String),
    /// A known account in the system that nobody owns.
    Unowned,
}

fn login_of(conn: &Connection, system: &str, person: &str) -> Result<Option<LoginRow>> {
    Ok(conn
        .prepare_cached(
            "SELECT system, person_id, login, assigned_at, create_sent_at FROM logins
             WHERE system = ?1 AND person_id = ?2",
        )?
        .query_row(params![system, person], |r| {
            Ok(LoginRow {
                system: r.get(0)?,
                person_id: r.get(1)?,
                login: r.get(2)?,
                assigned_at: r.get(3)?,
                create_sent_at: r.get(4)?,
            })
        })
        .optional()?)
}

fn holder(conn: &Connection, system: &str, login: &str, person: &str) -> Result<Option<Holder>> {
    let key = login_key(login);
    let assigned: Option<String> = conn
        .prepare_cached("SELECT person_id FROM logins WHERE system = ?1 AND login_key = ?2")?
        .query_row(params![system, key], |r| r.get(0))
        .optional()?;
    if let Some(p) = assigned {
        return Ok((p != person).then_some(Holder::Person(p)));
    }
    let account: Option<Option<String>> = conn
        .prepare_cached(
            "SELECT person_id FROM accounts WHERE system = ?1 AND lower(login) = ?2 LIMIT 1",
        )?
        .query_row(params![system, key], |r| r.get(0))
        .optional()?;
    Ok(match account {
        None => None,
        Some(Some(p)) if p == person => None,
        Some(Some(p)) => Some(Holder::Person(p)),
        Some(None) => Some(Holder::Unowned),
    })
}

impl Store {
    pub fn login_of(&self, system: &str, person: &str) -> Result<Option<LoginRow>> {
        login_of(&self.conn, system, person)
    }

    /// Who else holds `login` in `system` (None: it is free for `person`, or theirs).
    pub fn login_holder(&self, system: &str, login: &str, person: &str) -> Result<Option<Holder>> {
        holder(&self.conn, system, login, person)
    }

    /// Identity conflicts, open ones only unless `all`.
    pub fn identity_conflicts(&self, all: bool) -> Result<Vec<IdentityConflict>> {
        let sql = format!(
            "SELECT id, system, person_id, login, external_id, owner_hris_id, detected_at, resolved_at, resolution
             FROM identity_conflicts {} ORDER BY id",
            if all { "" } else { "WHERE resolved_at IS NULL" }
        );
        let mut stmt = self.conn.prepare(&sql)?;
        let rows = stmt.query_map([], |r| {
            Ok(IdentityConflict {
                id: r.get(0)?,
                system: r.get(1)?,
                person_id: r.get(2)?,
                login: r.get(3)?,
                external_id: r.get(4)?,
                owner_hris_id: r.get(5)?,
                detected_at: r.get(6)?,
                resolved_at: r.get(7)?,
                resolution: r.get(8)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }

    /// The account in `system` whose login or external id is `account`.
    pub fn find_account(&self, system: &str, account: &str) -> Result<Option<AccountRow>> {
        Ok(self
            .conn
            .query_row(
                "SELECT system, person_id, login, external_id, active FROM accounts
                 WHERE system = ?1 AND (lower(login) = lower(?2) OR external_id = ?2) LIMIT 1",
                params![system, account],
                |r| {
                    Ok(AccountRow {
                        system: r.get(0)?,
                        person_id: r.get(1)?,
                        login: r.get(2)?,
                        external_id: r.get(3)?,
                        active: r.get(4)?,
                    })
                },
            )
            .optional()?)
    }
}

impl Tx<'_> {
    pub fn login_of(&self, system: &str, person: &str) -> Result<Option<LoginRow>> {
        login_of(&self.tx, system, person)
    }

    pub fn login_holder(&self, system: &str, login: &str, person: &str) -> Result<Option<Holder>> {
        holder(&self.tx, system, login, person)
    }

    /// Assign `login` to `person` in `system`, if it is still free. Returns the person's
    /// login afterwards: theirs already if they had one (never reassigned), `login` if it
    /// was free, None if someone else holds it. Audited when it assigns.
    pub fn claim_login(
        &mut self,
        system: &str,
        person: &str,
        login: &str,
        actor: &str,
    ) -> Result<Option<String>> {
        if let Some(row) = self.login_of(system, person)? {
            return Ok(Some(row.login));
        }
        if self.login_holder(system, login, person)?.is_some() {
            return Ok(None);
        }
        self.tx
            .prepare_cached(
                "INSERT INTO logins (system, person_id, login, login_key, assigned_at) VALUES (?1, ?2, ?3, ?4, ?5)",
            )?
            .execute(params![system, person, login, login_key(login), self.now.to_rfc3339()])?;
        self.audit(NewAuditEvent {
            actor,
            action: "login.assigned",
            subject: person,
            details: json!({"system": system, "login": login}),
        })?;
        Ok(Some(login.to_string()))
    }

    /// Rename `person`'s assigned login in `system` from `from` to `to` (the target has
    /// already renamed the account): the login, the account row and its observed
    /// memberships move together, audited `login.renamed` with old and new. Refused
    /// (false, nothing changed) when another person or an unowned account holds `to`
    /// (case-insensitive), or when `from` is no longer their login.
    pub fn rename_login(
        &mut self,
        system: &str,
        person: &str,
        from: &str,
        to: &str,
        actor: &str,
    ) -> Result<bool> {
        let Some(row) = self.login_of(system, person)? else {
            return Ok(false);
        };
        if login_key(&row.login) != login_key(from)
            || self.login_holder(system, to, person)?.is_some()
        {
            return Ok(false);
        }
        self.tx
            .prepare_cached(
                "UPDATE logins SET login = ?3, login_key = ?4 WHERE system = ?1 AND person_id = ?2",
            )?
            .execute(params![system, person, to, login_key(to)])?;
        self.tx
            .prepare_cached(
                "UPDATE accounts SET login = ?4 WHERE system = ?1 AND person_id = ?2 AND lower(login) = ?3",
            )?
            .execute(params![system, person, login_key(from), to])?;
        self.tx
            .prepare_cached(
                "UPDATE observed_access SET account_login = ?4
                 WHERE system = ?1 AND person_id = ?2 AND lower(account_login) = ?3",
            )?
            .execute(params![system, person, login_key(from), to])?;
        self.audit(NewAuditEvent {
            actor,
            action: "login.renamed",
            subject: person,
            details: json!({"system": system, "old": row.login, "new": to}),
        })?;
        Ok(true)
    }

    /// Whether an account the target holds under `login` was found not to be provably
    /// anyone's (an open identity conflict): no one is given that login.
    pub fn login_in_conflict(&self, system: &str, login: &str) -> Result<bool> {
        Ok(self
            .tx
            .prepare_cached(
                "SELECT 1 FROM identity_conflicts
                 WHERE system = ?1 AND lower(login) = ?2 AND resolved_at IS NULL LIMIT 1",
            )?
            .query_row(params![system, login_key(login)], |_| Ok(()))
            .optional()?
            .is_some())
    }

    /// Take back a login assigned to `person` that was never used: the target already
    /// held an account under it that is not theirs, so their create made nothing. Audited.
    pub fn release_login(
        &mut self,
        system: &str,
        person: &str,
        login: &str,
        why: &str,
        actor: &str,
    ) -> Result<bool> {
        let n = self
            .tx
            .prepare_cached(
                "DELETE FROM logins WHERE system = ?1 AND person_id = ?2 AND login = ?3",
            )?
            .execute(params![system, person, login])?;
        if n > 0 {
            self.audit(NewAuditEvent {
                actor,
                action: "login.released",
                subject: person,
                details: json!({"system": system, "login": login, "why": why}),
            })?;
        }
        Ok(n > 0)
    }

    /// Record that the create for the person's assigned login is about to be sent.
    pub fn mark_create_sent(&mut self, system: &str, person: &str) -> Result<()> {
        self.tx
            .prepare_cached(
                "UPDATE logins SET create_sent_at = ?3 WHERE system = ?1 AND person_id = ?2 AND create_sent_at IS NULL",
            )?
            .execute(params![system, person, self.now.to_rfc3339()])?;
        Ok(())
    }

    /// Report an account that the target did not prove was `person`'s. Audited once per
    /// (system, person, login); a resolved one that comes back is opened again.
    pub fn record_identity_conflict(
        &mut self,
        system: &str,
        person: &str,
        login: &str,
        external_id: Option<&str>,
        owner: Option<&str>,
        actor: &str,
    ) -> Result<bool> {
        let open: Option<Option<String>> = self
            .tx
            .query_row(
                "SELECT resolved_at FROM identity_conflicts WHERE system = ?1 AND person_id = ?2 AND login = ?3",
                params![system, person, login],
                |r| r.get(0),
            )
            .optional()?;
        if matches!(open, Some(None)) {
            return Ok(false);
        }
        self.tx.execute(
            "INSERT INTO identity_conflicts (system, person_id, login, external_id, owner_hris_id, detected_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)
             ON CONFLICT(system, person_id, login) DO UPDATE SET external_id = excluded.external_id,
               owner_hris_id = excluded.owner_hris_id, detected_at = excluded.detected_at,
               resolved_at = NULL, resolution = NULL",
            params![system, person, login, external_id, owner, self.now.to_rfc3339()],
        )?;
        self.audit(NewAuditEvent {
            actor,
            action: "identity.conflict",
            subject: person,
            details: json!({"system": system, "login": login, "external_id": external_id, "owner_hris_id": owner}),
        })?;
        Ok(true)
    }

    /// Link an existing account to a person (after proof, or by an admin). The person's
    /// assigned login becomes the account's login. Audited with the reason.
    pub fn link_account(
        &mut self,
        account: &AccountRow,
        person: &str,
        why: &str,
        forced: bool,
        actor: &str,
    ) -> Result<()> {
        let mut row = account.clone();
        row.person_id = Some(person.to_string());
        // The account's row, then the person's login (replacing an unused assignment).
        self.tx.execute(
            "INSERT INTO accounts (system, person_id, login, external_id, active, observed_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
             ON CONFLICT(system, login) DO UPDATE SET person_id = excluded.person_id,
               external_id = COALESCE(excluded.external_id, accounts.external_id), active = excluded.active",
            params![row.system, person, row.login, row.external_id, row.active, self.now.to_rfc3339()],
        )?;
        self.tx.execute(
            "DELETE FROM logins WHERE system = ?1 AND (person_id = ?2 OR login_key = ?3)",
            params![row.system, person, login_key(&row.login)],
        )?;
        self.tx.execute(
            "INSERT INTO logins (system, person_id, login, login_key, assigned_at) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![row.system, person, row.login, login_key(&row.login), self.now.to_rfc3339()],
        )?;
        self.tx.execute(
            "UPDATE identity_conflicts SET resolved_at = ?3, resolution = ?4
             WHERE system = ?1 AND lower(login) = lower(?2) AND resolved_at IS NULL",
            params![
                row.system,
                row.login,
                self.now.to_rfc3339(),
                format!("linked to {person}: {why}")
            ],
        )?;
        self.audit(NewAuditEvent {
            actor,
            action: "account.linked",
            subject: person,
            details: json!({"system": row.system, "login": row.login, "external_id": row.external_id,
                            "reason": why, "forced": forced}),
        })?;
        Ok(())
    }

    /// Detach an account from its person. Its login stays reserved (the account still
    /// exists); the person gets a new login if they need an account here again.
    pub fn unlink_account(&mut self, account: &AccountRow, why: &str, actor: &str) -> Result<()> {
        self.tx.execute(
            "UPDATE accounts SET person_id = NULL WHERE system = ?1 AND login = ?2",
            params![account.system, account.login],
        )?;
        if let Some(p) = &account.person_id {
            self.tx.execute(
                "DELETE FROM logins WHERE system = ?1 AND person_id = ?2 AND login_key = ?3",
                params![account.system, p, login_key(&account.login)],
            )?;
            self.tx.execute(
                "DELETE FROM observed_access WHERE system = ?1 AND account_login = ?2",
                params![account.system, account.login],
            )?;
        }
        self.audit(NewAuditEvent {
            actor,
            action: "account.unlinked",
            subject: account.person_id.as_deref().unwrap_or(&account.login),
            details: json!({"system": account.system, "login": account.login,
                            "external_id": account.external_id, "reason": why}),
        })?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Person;

    fn store() -> Store {
        let mut s = Store::open_in_memory().unwrap();
        s.write(|tx| {
            for id in ["E1", "E2"] {
                tx.upsert_person(&Person::new(id, "John", "Smith", "j@x.io"), "t")?;
            }
            Ok(())
        })
        .unwrap();
        s
    }

    #[test]
    fn a_login_is_claimed_once_and_case_insensitively() {
        let mut s = store();
        let got = s
            .write(|tx| tx.claim_login("iam", "E1", "john.smith", "t"))
            .unwrap();
        assert_eq!(got.as_deref(), Some("john.smith"));
        // Another person cannot take it, in any case.
        let other = s
            .write(|tx| tx.claim_login("iam", "E2", "John.Smith", "t"))
            .unwrap();
        assert_eq!(other, None);
        assert_eq!(
            s.login_holder("iam", "JOHN.SMITH", "E2").unwrap(),
            Some(Holder::Person("E1".into()))
        );
        // Never reassigned: E1 asking for another login keeps the first.
        let again = s
            .write(|tx| tx.claim_login("iam", "E1", "jsmith", "t"))
            .unwrap();
        assert_eq!(again.as_deref(), Some("john.smith"));
        // Another system is another namespace.
        let okta = s
            .write(|tx| tx.claim_login("okta", "E2", "john.smith", "t"))
            .unwrap();
        assert_eq!(okta.as_deref(), Some("john.smith"));
    }

    #[test]
    fn a_rename_moves_the_login_and_is_audited_unless_taken() {
        let mut s = store();
        s.write(|tx| {
            tx.claim_login("okta", "E1", "j@x.io", "t")?;
            tx.claim_login("okta", "E2", "js@x.io", "t")?;
            tx.upsert_account(
                &AccountRow {
                    system: "okta".into(),
                    person_id: Some("E1".into()),
                    login: "j@x.io".into(),
                    external_id: Some("00u1".into()),
                    active: true,
                },
                "t",
            )
        })
        .unwrap();
        // Onto E2's login (any case): refused, nothing changed.
        assert!(
            !s.write(|tx| tx.rename_login("okta", "E1", "j@x.io", "JS@x.io", "t"))
                .unwrap()
        );
        assert_eq!(s.login_of("okta", "E1").unwrap().unwrap().login, "j@x.io");
        assert!(
            s.write(|tx| tx.rename_login("okta", "E1", "j@x.io", "john@x.io", "t"))
                .unwrap()
        );
        assert_eq!(
            s.login_of("okta", "E1").unwrap().unwrap().login,
            "john@x.io"
        );
        assert_eq!(
            s.account_for("okta", "E1").unwrap().unwrap().login,
            "john@x.io"
        );
        // The old login is free again.
        assert_eq!(s.login_holder("okta", "j@x.io", "E2").unwrap(), None);
        let n: i64 = s
            .conn()
            .query_row(
                "SELECT count(*) FROM audit_events WHERE action = 'login.renamed'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(n, 1);
    }

    #[test]
    fn unowned_accounts_hold_their_login() {
        let mut s = store();
        s.write(|tx| {
            tx.upsert_account(
                &AccountRow {
                    system: "iam".into(),
                    person_id: None,
                    login: "john.smith".into(),
                    external_id: Some("john.smith".into()),
                    active: true,
                },
                "t",
            )
        })
        .unwrap();
        assert_eq!(
            s.login_holder("iam", "john.smith", "E1").unwrap(),
            Some(Holder::Unowned)
        );
        assert_eq!(
            s.write(|tx| tx.claim_login("iam", "E1", "john.smith", "t"))
                .unwrap(),
            None
        );
    }

    #[test]
    fn link_and_unlink_are_audited_and_resolve_conflicts() {
        let mut s = store();
        let acc = AccountRow {
            system: "iam".into(),
            person_id: None,
            login: "jsmith".into(),
            external_id: Some("jsmith".into()),
            active: true,
        };
        s.write(|tx| {
            tx.record_identity_conflict("iam", "E1", "jsmith", Some("jsmith"), None, "engine")
        })
        .unwrap();
        assert_eq!(s.identity_conflicts(false).unwrap().len(), 1);
        s.write(|tx| tx.link_account(&acc, "E1", "made by hand for John", false, "admin"))
            .unwrap();
        assert!(s.identity_conflicts(false).unwrap().is_empty());
        assert_eq!(s.login_of("iam", "E1").unwrap().unwrap().login, "jsmith");
        assert_eq!(s.account_for("iam", "E1").unwrap().unwrap().login, "jsmith");
        let linked = s.account_for("iam", "E1").unwrap().unwrap();
        s.write(|tx| tx.unlink_account(&linked, "wrong person", "admin"))
            .unwrap();
        assert!(s.account_for("iam", "E1").unwrap().is_none());
        assert!(s.login_of("iam", "E1").unwrap().is_none());
        let actions: Vec<String> = s
            .conn()
            .prepare("SELECT action FROM audit_events ORDER BY seq")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        for a in ["identity.conflict", "account.linked", "account.unlinked"] {
            assert!(actions.iter().any(|x| x == a), "{a} in {actions:?}");
        }
    }
}
