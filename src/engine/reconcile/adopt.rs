//! Adoption: a complete read becomes the system's `accounts` and `observed_access`
//! rows, keeping what operations changed after the read began.

use super::correlate::{SystemMaps, correlate_at};
use super::{Match, World, lower};
use crate::Result;
use crate::config::SystemEntry;
use crate::store::reconcile::{Checkpoint, text};
use rusqlite::{OptionalExtension, params};
use std::collections::HashSet;

/// Make a complete read the system's actual access: accounts and catalogued memberships
/// as observed, with person links only where proven, keeping what operations changed
/// after the read started. Streams the read account by account, so memory stays flat.
pub(super) fn adopt_observation(
    tx: &mut crate::store::Tx<'_>,
    w: &World,
    entry: &SystemEntry,
    run: i64,
    read: &Checkpoint,
    read_started: &str,
    actor: &str,
) -> Result<()> {
    let system = entry.system.name.as_str();
    let observed_at = read
        .observed_at
        .clone()
        .unwrap_or_else(|| read_started.to_string());
    // What operations changed since the read began: (login, entitlement) memberships
    // and the accounts they wrote. Their rows stay as the operations left them.
    let mut touched_access: HashSet<(String, String)> = HashSet::new();
    let mut touched_accounts: HashSet<String> = HashSet::new();
    let c = tx.conn();
    {
        let mut st = c.prepare(
            "SELECT account_login, entitlement FROM observed_access WHERE system = ?1 AND source = 'recorded' AND observed_at >= ?2",
        )?;
        let mut rows = st.query(params![system, read_started])?;
        while let Some(r) = rows.next()? {
            touched_access.insert((r.get::<_, String>(0)?.to_lowercase(), r.get(1)?));
        }
        let mut st = c.prepare(
            "SELECT a.login, o.entitlement FROM operations o JOIN accounts a ON a.system = o.system AND a.person_id = o.person_id
             WHERE o.system = ?1 AND o.status = 'succeeded' AND o.updated_at >= ?2 AND o.entitlement IS NOT NULL",
        )?;
        let mut rows = st.query(params![system, read_started])?;
        while let Some(r) = rows.next()? {
            touched_access.insert((r.get::<_, String>(0)?.to_lowercase(), r.get(1)?));
        }
        let mut st = c.prepare(
            "SELECT lower(login) FROM accounts WHERE system = ?1 AND source = 'recorded' AND observed_at >= ?2",
        )?;
        let mut rows = st.query(params![system, read_started])?;
        while let Some(r) = rows.next()? {
            touched_accounts.insert(r.get(0)?);
        }
    }
    let touched = |login: &str, ent: &str| {
        !touched_access.is_empty() && touched_access.contains(&(login.to_string(), ent.to_string()))
    };
    let groups = crate::store::reconcile::observed_groups_in(c, run, system)?;
    let mut upsert_account = c.prepare_cached(
        "INSERT INTO accounts (system, person_id, login, external_id, active, observed_at, source)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'observed')
         ON CONFLICT(system, login) DO UPDATE SET
           person_id = COALESCE(accounts.person_id, excluded.person_id),
           external_id = excluded.external_id, active = excluded.active,
           observed_at = excluded.observed_at, source = 'observed'",
    )?;
    let mut owner_of =
        c.prepare_cached("SELECT person_id FROM accounts WHERE system = ?1 AND login = ?2")?;
    let mut existing_of = c.prepare_cached(
        "SELECT entitlement FROM observed_access WHERE system = ?1 AND account_login = ?2",
    )?;
    let mut drop_access = c.prepare_cached(
        "DELETE FROM observed_access WHERE system = ?1 AND account_login = ?2 AND entitlement = ?3",
    )?;
    let mut upsert_access = c.prepare_cached(
        "INSERT INTO observed_access (system, account_login, person_id, entitlement, observed_at, source)
         VALUES (?1, ?2, ?3, ?4, ?5, 'observed')
         ON CONFLICT(system, account_login, entitlement) DO UPDATE SET person_id = excluded.person_id,
           observed_at = excluded.observed_at, source = 'observed'",
    )?;
    let maps = SystemMaps::of(w, system);
    let mut seen_logins: HashSet<String> = HashSet::new();
    let (mut accounts, mut memberships, mut removed, mut added) = (0usize, 0usize, 0usize, 0usize);
    let mut want: Vec<&str> = Vec::new();
    crate::store::reconcile::for_each_observed_account(c, run, system, &groups, |a, held| {
        accounts += 1;
        let key = lower(a.login);
        if !touched_accounts.contains(key.as_ref()) {
            // Accounts: proven owners only.
            let owner = match correlate_at(&maps, &entry.correlate, a).0 {
                Match::Linked { person, by } if by.proves() => Some(person),
                _ => None,
            };
            upsert_account.execute(params![
                system,
                owner,
                a.login,
                a.external_id,
                a.active,
                observed_at
            ])?;
        }
        // Memberships in catalogued groups, with the person only where the account's
        // owner is proven.
        want.clear();
        want.extend(
            held.iter()
                .map(|&g| &groups[g as usize])
                .filter(|g| g.2)
                .map(|g| g.0.as_str()),
        );
        memberships += want.len();
        let existing: Vec<String> = existing_of
            .query_map(params![system, a.login], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        for ent in &existing {
            if !want.contains(&ent.as_str()) && !touched(&key, ent) {
                removed += drop_access.execute(params![system, a.login, ent])?;
            }
        }
        if !want.is_empty() {
            let person: Option<String> = owner_of
                .query_row(params![system, a.login], |r| r.get(0))
                .optional()?
                .flatten();
            for ent in &want {
                if !touched(&key, ent) {
                    added += upsert_access.execute(params![
                        system,
                        a.login,
                        person,
                        ent,
                        observed_at
                    ])?;
                }
            }
        }
        seen_logins.insert(key.into_owned());
        Ok(())
    })?;
    // Accounts the target no longer has (and no operation wrote since the read began),
    // and memberships recorded on logins the read did not see at all.
    // Both are picked out while reading (not collected whole first): a system of a
    // million memberships must not be held in memory twice.
    let gone: Vec<String> = {
        let mut st = c.prepare(
            "SELECT login FROM accounts WHERE system = ?1 AND NOT (source = 'recorded' AND observed_at >= ?2)",
        )?;
        let mut rows = st.query(params![system, read_started])?;
        let mut out = Vec::new();
        while let Some(r) = rows.next()? {
            let l = text(r, 0)?;
            if !seen_logins.contains(lower(l).as_ref()) {
                out.push(l.to_string());
            }
        }
        out
    };
    for login in &gone {
        c.prepare_cached("DELETE FROM observed_access WHERE system = ?1 AND account_login = ?2")?
            .execute(params![system, login])?;
        c.prepare_cached("DELETE FROM accounts WHERE system = ?1 AND login = ?2")?
            .execute(params![system, login])?;
    }
    let stray: Vec<(String, String)> = {
        let mut st =
            c.prepare("SELECT account_login, entitlement FROM observed_access WHERE system = ?1")?;
        let mut rows = st.query([system])?;
        let mut out = Vec::new();
        while let Some(r) = rows.next()? {
            let (l, e) = (text(r, 0)?, text(r, 1)?);
            let key = lower(l);
            if !seen_logins.contains(key.as_ref()) && !touched(&key, e) {
                out.push((l.to_string(), e.to_string()));
            }
        }
        out
    };
    for (login, ent) in &stray {
        removed += drop_access.execute(params![system, login, ent])?;
    }
    drop((
        upsert_account,
        owner_of,
        existing_of,
        drop_access,
        upsert_access,
    ));
    tx.audit(crate::store::NewAuditEvent {
        actor,
        action: "access.observed_in_full",
        subject: system,
        details: serde_json::json!({"accounts": accounts, "accounts_gone": gone.len(),
                                    "memberships": memberships, "memberships_gone": removed,
                                    "memberships_written": added, "observed_at": observed_at,
                                    "kept_from_operations_since": touched_access.len()}),
    })?;
    Ok(())
}
