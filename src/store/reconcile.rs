//! Reconciliation's records: observation runs and their per-system checkpoints, what each
//! run read (accounts, groups, members), the findings classified from it, their
//! dispositions and accepted exceptions. The reading lives in `engine/observe.rs`, the
//! correlation and classification in `engine/reconcile/`.

use super::queue::ts;
use super::{NewAuditEvent, Store, Tx};
use crate::Result;
use rusqlite::{OptionalExtension, params};
use serde::Serialize;
use serde_json::json;
use std::collections::BTreeMap;

/// Where one system's read stands: the phase, which entitlement (members phase) and the
/// next page's cursor. Written after every page, so a run resumes where it stopped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Checkpoint {
    pub system: String,
    pub status: String,
    /// `accounts`, `groups`, `members`, `done`.
    pub phase: String,
    pub ent_index: i64,
    pub cursor: Option<String>,
    pub accounts: i64,
    pub memberships: i64,
    pub pages: i64,
    /// Whether every group was listed (so memberships outside the catalogue were seen).
    pub all_groups: bool,
    pub started_at: String,
    pub observed_at: Option<String>,
    pub error: Option<String>,
}

/// One observation run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RunRow {
    pub id: i64,
    pub started_at: String,
    pub finished_at: Option<String>,
    pub scope: Option<String>,
    pub status: String,
    pub actor: String,
}

/// An account as a run read it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ObservedAccount {
    pub external_id: String,
    pub login: String,
    pub email: Option<String>,
    pub active: bool,
    pub hris_id: Option<String>,
    pub attributes: BTreeMap<String, String>,
    /// Only seen in a group's member listing: it appeared while the run read.
    pub late: bool,
}

/// A finding as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FindingRow {
    pub id: i64,
    pub run_id: i64,
    pub key: String,
    pub class: String,
    pub severity: String,
    pub system: String,
    pub person: Option<String>,
    pub account: Option<String>,
    pub account_id: Option<String>,
    pub entitlement: Option<String>,
    pub detail: String,
    pub status: String,
    pub decided_by: Option<String>,
    pub decided_at: Option<String>,
    pub reason: Option<String>,
    pub until: Option<String>,
}

/// A finding to store (from engine/reconcile/).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NewFinding {
    pub class: &'static str,
    pub severity: &'static str,
    /// Sort order: leavers first, then by severity, then by class.
    pub rank: i64,
    pub system: String,
    pub person: Option<String>,
    pub account: Option<String>,
    pub account_id: Option<String>,
    pub entitlement: Option<String>,
    pub detail: String,
}

impl NewFinding {
    /// The same drift across runs.
    pub fn key(&self) -> String {
        format!(
            "{}|{}|{}|{}",
            self.class,
            self.system,
            self.account_id
                .as_deref()
                .or(self.person.as_deref())
                .unwrap_or("-"),
            self.entitlement.as_deref().unwrap_or("-")
        )
    }
}

const CHECKPOINT_COLS: &str = "system, status, phase, ent_index, cursor, accounts, memberships, pages, all_groups, started_at, observed_at, error";

fn checkpoint_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Checkpoint> {
    Ok(Checkpoint {
        system: r.get(0)?,
        status: r.get(1)?,
        phase: r.get(2)?,
        ent_index: r.get(3)?,
        cursor: r.get(4)?,
        accounts: r.get(5)?,
        memberships: r.get(6)?,
        pages: r.get(7)?,
        all_groups: r.get(8)?,
        started_at: r.get(9)?,
        observed_at: r.get(10)?,
        error: r.get(11)?,
    })
}

const FINDING_COLS: &str = "id, run_id, key, class, severity, system, person_id, account, account_id, entitlement, detail, status, decided_by, decided_at, reason, until";

fn finding_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<FindingRow> {
    Ok(FindingRow {
        id: r.get(0)?,
        run_id: r.get(1)?,
        key: r.get(2)?,
        class: r.get(3)?,
        severity: r.get(4)?,
        system: r.get(5)?,
        person: r.get(6)?,
        account: r.get(7)?,
        account_id: r.get(8)?,
        entitlement: r.get(9)?,
        detail: r.get(10)?,
        status: r.get(11)?,
        decided_by: r.get(12)?,
        decided_at: r.get(13)?,
        reason: r.get(14)?,
        until: r.get(15)?,
    })
}

/// Which findings to list.
#[derive(Debug, Clone, Default)]
pub struct FindingFilter {
    pub run: Option<i64>,
    pub class: Option<String>,
    pub system: Option<String>,
    pub id: Option<i64>,
    /// Only findings still open.
    pub open_only: bool,
}

impl Tx<'_> {
    /// Start a run over `systems`; audited.
    pub fn start_run(
        &mut self,
        scope: Option<&str>,
        systems: &[String],
        actor: &str,
    ) -> Result<i64> {
        let now = ts(self.now);
        self.tx.execute(
            "INSERT INTO observe_runs (started_at, scope, status, actor) VALUES (?1, ?2, 'running', ?3)",
            params![now, scope, actor],
        )?;
        let id = self.tx.last_insert_rowid();
        for s in systems {
            self.tx.execute(
                "INSERT INTO observe_systems (run_id, system, status, phase, started_at) VALUES (?1, ?2, 'running', 'accounts', ?3)",
                params![id, s, now],
            )?;
        }
        self.audit(NewAuditEvent {
            actor,
            action: "observe.started",
            subject: &format!("run:{id}"),
            details: json!({"systems": systems}),
        })?;
        Ok(id)
    }

    /// Store one page a system's read returned, and the checkpoint after it, together: a
    /// page is either stored with its checkpoint or read again.
    pub fn save_page(
        &mut self,
        run: i64,
        cp: &Checkpoint,
        accounts: &[ObservedAccount],
        groups: &[(String, String, bool)],
        members: &[(String, String)],
    ) -> Result<()> {
        super::pack::drop_pack(&self.tx, run, &cp.system)?;
        {
            let mut ins = self.tx.prepare_cached(
                "INSERT INTO observed_accounts (run_id, system, external_id, login, email, active, hris_id, attributes, seen_in)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
                 ON CONFLICT(run_id, system, external_id) DO UPDATE SET login = excluded.login, email = excluded.email,
                   active = excluded.active, hris_id = excluded.hris_id, attributes = excluded.attributes
                 WHERE observed_accounts.seen_in = excluded.seen_in OR excluded.seen_in = 'accounts'",
            )?;
            for a in accounts {
                let attrs = if a.attributes.is_empty() {
                    None
                } else {
                    serde_json::to_string(&a.attributes).ok()
                };
                ins.execute(params![
                    run,
                    cp.system,
                    a.external_id,
                    a.login,
                    a.email,
                    a.active,
                    a.hris_id,
                    attrs,
                    if a.late { "members" } else { "accounts" }
                ])?;
            }
        }
        {
            let mut ins = self.tx.prepare_cached(
                "INSERT OR IGNORE INTO observed_groups (run_id, system, entitlement, external_id, catalogued) VALUES (?1, ?2, ?3, ?4, ?5)",
            )?;
            for (ent, ext, catalogued) in groups {
                ins.execute(params![run, cp.system, ent, ext, catalogued])?;
            }
        }
        {
            let mut ins = self.tx.prepare_cached(
                "INSERT OR IGNORE INTO observed_members (run_id, system, entitlement, account_id) VALUES (?1, ?2, ?3, ?4)",
            )?;
            for (ent, acct) in members {
                ins.execute(params![run, cp.system, ent, acct])?;
            }
        }
        self.save_checkpoint(run, cp)
    }

    /// Mark accounts a run listed that the system no longer has (they vanished while the
    /// run read): classification and adoption leave them out. Returns how many.
    pub fn mark_gone(&mut self, run: i64, system: &str, ids: &[String]) -> Result<usize> {
        super::pack::drop_pack(&self.tx, run, system)?;
        let mut st = self.tx.prepare_cached(
            "UPDATE observed_accounts SET seen_in = 'gone' WHERE run_id = ?1 AND system = ?2 AND external_id = ?3",
        )?;
        let mut n = 0;
        for id in ids {
            n += st.execute(params![run, system, id])?;
        }
        Ok(n)
    }

    pub fn save_checkpoint(&mut self, run: i64, cp: &Checkpoint) -> Result<()> {
        self.tx
            .prepare_cached(
                "UPDATE observe_systems SET status = ?3, phase = ?4, ent_index = ?5, cursor = ?6, accounts = ?7,
                   memberships = ?8, pages = ?9, all_groups = ?10, observed_at = ?11, error = ?12
                 WHERE run_id = ?1 AND system = ?2",
            )?
            .execute(params![
                run,
                cp.system,
                cp.status,
                cp.phase,
                cp.ent_index,
                cp.cursor,
                cp.accounts,
                cp.memberships,
                cp.pages,
                cp.all_groups,
                cp.observed_at,
                cp.error
            ])?;
        if cp.status == "complete" {
            super::pack::build(&self.tx, run, &cp.system)?;
        }
        Ok(())
    }

    /// Close a run: complete when every system was read in full. Audited.
    pub fn finish_run(&mut self, run: i64, actor: &str) -> Result<String> {
        let incomplete: i64 = self.tx.query_row(
            "SELECT count(*) FROM observe_systems WHERE run_id = ?1 AND status != 'complete'",
            [run],
            |r| r.get(0),
        )?;
        let status = if incomplete == 0 {
            "complete"
        } else {
            "incomplete"
        };
        self.tx.execute(
            "UPDATE observe_runs SET status = ?2, finished_at = ?3 WHERE id = ?1",
            params![run, status, ts(self.now)],
        )?;
        let systems: Vec<Checkpoint> = {
            let mut st = self.tx.prepare(&format!(
                "SELECT {CHECKPOINT_COLS} FROM observe_systems WHERE run_id = ?1 ORDER BY system"
            ))?;
            st.query_map([run], checkpoint_row)?
                .collect::<rusqlite::Result<_>>()?
        };
        self.audit(NewAuditEvent {
            actor,
            action: "observe.finished",
            subject: &format!("run:{run}"),
            details: json!({"status": status, "systems": systems.iter().map(|c| json!({
                "system": c.system, "status": c.status, "accounts": c.accounts,
                "memberships": c.memberships, "observed_at": c.observed_at, "error": c.error,
            })).collect::<Vec<_>>()}),
        })?;
        Ok(status.to_string())
    }

    /// Replace a run's findings with `findings`. A finding whose drift an unexpired
    /// exception covers is stored as accepted (with the exception's reason, approver and
    /// expiry). Audited with the counts per class.
    pub fn store_findings(&mut self, run: i64, findings: &[NewFinding], actor: &str) -> Result<()> {
        self.tx.execute(
            "DELETE FROM findings WHERE run_id = ?1 AND status = 'open'",
            [run],
        )?;
        let now = ts(self.now);
        let exceptions: BTreeMap<String, (String, String, String)> = {
            let mut st = self.tx.prepare(
                "SELECT key, reason, approver, expires_at FROM finding_exceptions WHERE expires_at > ?1",
            )?;
            st.query_map([&now], |r| {
                Ok((r.get(0)?, (r.get(1)?, r.get(2)?, r.get(3)?)))
            })?
            .collect::<rusqlite::Result<_>>()?
        };
        let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
        let mut accepted = 0usize;
        {
            let mut ins = self.tx.prepare_cached(
                "INSERT INTO findings (run_id, key, class, severity, rank, system, person_id, account, account_id, entitlement,
                   detail, status, decided_by, decided_at, reason, until)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)
                 ON CONFLICT(run_id, key) DO NOTHING",
            )?;
            for f in findings {
                let key = f.key();
                let exc = exceptions.get(&key);
                if exc.is_some() {
                    accepted += 1;
                }
                *counts.entry(f.class).or_default() += 1;
                ins.execute(params![
                    run,
                    key,
                    f.class,
                    f.severity,
                    f.rank,
                    f.system,
                    f.person,
                    f.account,
                    f.account_id,
                    f.entitlement,
                    f.detail,
                    if exc.is_some() { "accepted" } else { "open" },
                    exc.map(|e| e.1.clone()),
                    exc.map(|_| now.clone()),
                    exc.map(|e| e.0.clone()),
                    exc.map(|e| e.2.clone()),
                ])?;
            }
        }
        self.audit(NewAuditEvent {
            actor,
            action: "findings.classified",
            subject: &format!("run:{run}"),
            details: json!({"by_class": counts, "covered_by_exceptions": accepted}),
        })?;
        Ok(())
    }

    /// Record a disposition on a finding (enforced, accepted, ignored). Audited.
    pub fn decide_finding(
        &mut self,
        f: &FindingRow,
        status: &str,
        reason: Option<&str>,
        until: Option<&str>,
        ops: &[i64],
        actor: &str,
    ) -> Result<()> {
        let now = ts(self.now);
        self.tx.execute(
            "UPDATE findings SET status = ?2, decided_by = ?3, decided_at = ?4, reason = ?5, until = ?6 WHERE id = ?1",
            params![f.id, status, actor, now, reason, until],
        )?;
        for op in ops {
            self.tx.execute(
                "INSERT OR IGNORE INTO finding_ops (finding_id, op_id) VALUES (?1, ?2)",
                params![f.id, op],
            )?;
        }
        if status == "accepted" {
            self.tx.execute(
                "INSERT INTO finding_exceptions (key, reason, approver, expires_at, created_at, finding_id)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                 ON CONFLICT(key) DO UPDATE SET reason = excluded.reason, approver = excluded.approver,
                   expires_at = excluded.expires_at, created_at = excluded.created_at, finding_id = excluded.finding_id",
                params![f.key, reason.unwrap_or(""), actor, until.unwrap_or(""), now, f.id],
            )?;
        }
        self.audit(NewAuditEvent {
            actor,
            action: match status {
                "enforced" => "finding.enforced",
                "accepted" => "finding.accepted",
                _ => "finding.ignored",
            },
            subject: &format!("finding:{}", f.id),
            details: json!({"class": f.class, "system": f.system, "person": f.person, "account": f.account,
                            "entitlement": f.entitlement, "reason": reason, "until": until, "ops": ops}),
        })?;
        Ok(())
    }
}

impl Store {
    pub fn run(&self, id: i64) -> Result<Option<RunRow>> {
        Ok(self
            .conn
            .query_row(
                "SELECT id, started_at, finished_at, scope, status, actor FROM observe_runs WHERE id = ?1",
                [id],
                |r| {
                    Ok(RunRow {
                        id: r.get(0)?,
                        started_at: r.get(1)?,
                        finished_at: r.get(2)?,
                        scope: r.get(3)?,
                        status: r.get(4)?,
                        actor: r.get(5)?,
                    })
                },
            )
            .optional()?)
    }

    /// The newest run (any status).
    pub fn latest_run(&self) -> Result<Option<i64>> {
        Ok(self
            .conn
            .query_row("SELECT max(id) FROM observe_runs", [], |r| r.get(0))?)
    }

    pub fn checkpoints(&self, run: i64) -> Result<Vec<Checkpoint>> {
        let mut st = self.conn.prepare(&format!(
            "SELECT {CHECKPOINT_COLS} FROM observe_systems WHERE run_id = ?1 ORDER BY system"
        ))?;
        Ok(st
            .query_map([run], checkpoint_row)?
            .collect::<rusqlite::Result<_>>()?)
    }

    /// Each system's newest complete read: (system, run, observed_at).
    pub fn last_complete_reads(&self) -> Result<Vec<(String, i64, String)>> {
        let mut st = self.conn.prepare(
            "SELECT system, max(run_id), observed_at FROM observe_systems WHERE status = 'complete' GROUP BY system ORDER BY system",
        )?;
        Ok(st
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
            .collect::<rusqlite::Result<_>>()?)
    }

    /// The accounts a run read in a system.
    pub fn observed_accounts(&self, run: i64, system: &str) -> Result<Vec<ObservedAccount>> {
        observed_accounts_in(&self.conn, run, system)
    }

    /// The groups a run listed in a system: (entitlement, external id, catalogued).
    pub fn observed_groups(&self, run: i64, system: &str) -> Result<Vec<(String, String, bool)>> {
        observed_groups_in(&self.conn, run, system)
    }

    /// The external ids of the accounts a run listed in a system.
    pub fn observed_account_ids(
        &self,
        run: i64,
        system: &str,
    ) -> Result<std::collections::HashSet<String>> {
        observed_account_ids_in(&self.conn, run, system)
    }

    /// The accounts a run listed in a system that no group's member listing showed:
    /// either in no group, or gone since the listing (`observe` asks about each).
    pub fn silent_accounts(&self, run: i64, system: &str) -> Result<Vec<String>> {
        let mut st = self.conn.prepare_cached(
            "SELECT a.external_id FROM observed_accounts a
             WHERE a.run_id = ?1 AND a.system = ?2 AND a.seen_in = 'accounts'
               AND NOT EXISTS (SELECT 1 FROM observed_members m
                               WHERE m.run_id = a.run_id AND m.system = a.system AND m.account_id = a.external_id)
             ORDER BY a.external_id",
        )?;
        Ok(st
            .query_map(params![run, system], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?)
    }

    /// Accounts a run listed in a system that some group it read in full did not show
    /// although policy grants it to the account's person (by the HR id the account
    /// carries, or accessdesk's link of its login): drift, or an account deleted after
    /// its other groups were read. Observation asks about each before concluding.
    pub fn accounts_short_of_intent(&self, run: i64, system: &str) -> Result<Vec<String>> {
        let mut st = self.conn.prepare_cached(
            "WITH owner AS (
               SELECT oa.external_id AS id, COALESCE(NULLIF(oa.hris_id, ''), ac.person_id) AS person
               FROM observed_accounts oa
               LEFT JOIN accounts ac ON ac.system = oa.system AND ac.login = oa.login
               WHERE oa.run_id = ?1 AND oa.system = ?2 AND oa.seen_in = 'accounts'
             )
             SELECT DISTINCT o.id FROM owner o
             JOIN intended_grants ig ON ig.person_id = o.person
             JOIN observed_groups og ON og.run_id = ?1 AND og.system = ?2 AND og.entitlement = ig.entitlement
             WHERE NOT EXISTS (SELECT 1 FROM observed_members m
                               WHERE m.run_id = ?1 AND m.system = ?2 AND m.account_id = o.id
                                 AND m.entitlement = ig.entitlement)
             ORDER BY o.id",
        )?;
        Ok(st
            .query_map(params![run, system], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?)
    }

    /// Who a run saw in each group of a system: (entitlement, account external id).
    pub fn observed_members(&self, run: i64, system: &str) -> Result<Vec<(String, String)>> {
        observed_members_in(&self.conn, run, system)
    }

    pub fn findings(&self, f: &FindingFilter) -> Result<Vec<FindingRow>> {
        let mut sql = format!("SELECT {FINDING_COLS} FROM findings WHERE 1=1");
        let mut args: Vec<rusqlite::types::Value> = Vec::new();
        if let Some(id) = f.id {
            sql.push_str(" AND id = ?");
            args.push(id.into());
        }
        if let Some(r) = f.run {
            sql.push_str(" AND run_id = ?");
            args.push(r.into());
        }
        if let Some(c) = &f.class {
            sql.push_str(" AND class = ?");
            args.push(c.clone().into());
        }
        if let Some(s) = &f.system {
            sql.push_str(" AND system = ?");
            args.push(s.clone().into());
        }
        if f.open_only {
            sql.push_str(" AND status = 'open'");
        }
        sql.push_str(" ORDER BY rank, system, person_id, account, entitlement");
        let mut st = self.conn.prepare(&sql)?;
        Ok(st
            .query_map(rusqlite::params_from_iter(args), finding_row)?
            .collect::<rusqlite::Result<_>>()?)
    }

    /// The operations an enforced finding queued.
    pub fn finding_ops(&self, finding: i64) -> Result<Vec<i64>> {
        let mut st = self
            .conn
            .prepare_cached("SELECT op_id FROM finding_ops WHERE finding_id = ?1 ORDER BY op_id")?;
        Ok(st
            .query_map([finding], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?)
    }
}

pub fn observed_accounts_in(
    conn: &rusqlite::Connection,
    run: i64,
    system: &str,
) -> Result<Vec<ObservedAccount>> {
    let mut st = conn.prepare_cached(
        "SELECT external_id, login, email, active, hris_id, attributes, seen_in FROM observed_accounts
         WHERE run_id = ?1 AND system = ?2 AND seen_in != 'gone' ORDER BY external_id",
    )?;
    Ok(st
        .query_map(params![run, system], |r| {
            let attrs: Option<String> = r.get(5)?;
            Ok(ObservedAccount {
                external_id: r.get(0)?,
                login: r.get(1)?,
                email: r.get(2)?,
                active: r.get(3)?,
                hris_id: r.get(4)?,
                attributes: attrs
                    .and_then(|a| serde_json::from_str(&a).ok())
                    .unwrap_or_default(),
                late: r.get::<_, String>(6)? == "members",
            })
        })?
        .collect::<rusqlite::Result<_>>()?)
}

/// One observed account, borrowed from the row being read (see [`for_each_observed_account`]).
#[derive(Debug, Clone, Copy)]
pub struct AccountRow<'a> {
    pub external_id: &'a str,
    pub login: &'a str,
    pub email: Option<&'a str>,
    pub active: bool,
    pub hris_id: Option<&'a str>,
    pub attributes: Attrs<'a>,
    /// Only seen in a group's member listing: it appeared while the run read.
    pub late: bool,
}

/// An account's attributes: as stored (a JSON object, parsed only when compared), or
/// already in memory.
#[derive(Debug, Clone, Copy)]
pub enum Attrs<'a> {
    Json(Option<&'a str>),
    Map(&'a BTreeMap<String, String>),
}

impl Attrs<'_> {
    /// Call `f` with each (name, value) pair. Stored attributes that are not a JSON
    /// object of strings read as none (`save_page` writes them). Nothing is allocated
    /// unless a stored string holds an escape.
    pub fn for_each(&self, mut f: impl FnMut(&str, &str)) {
        match self {
            Attrs::Map(m) => m.iter().for_each(|(k, v)| f(k, v)),
            Attrs::Json(None) => {}
            Attrs::Json(Some(j)) => {
                use serde::de::DeserializeSeed;
                let mut de = serde_json::Deserializer::from_str(j);
                let _ = PairVisitor(&mut f).deserialize(&mut de);
            }
        }
    }
}

/// Walks a JSON object of strings, handing each pair to a closure.
struct PairVisitor<'f, F>(&'f mut F);

impl<'de, F: FnMut(&str, &str)> serde::de::DeserializeSeed<'de> for PairVisitor<'_, F> {
    type Value = ();
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> std::result::Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de, F: FnMut(&str, &str)> serde::de::Visitor<'de> for PairVisitor<'_, F> {
    type Value = ();
    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("an object of strings")
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(
        self,
        mut map: A,
    ) -> std::result::Result<(), A::Error> {
        while let Some(Text(k)) = map.next_key::<Text<'de>>()? {
            let Text(v) = map.next_value::<Text<'de>>()?;
            (self.0)(&k, &v);
        }
        Ok(())
    }
}

/// A JSON string, borrowed from the input unless it holds an escape. (Serde's own
/// `Cow<str>` always copies.)
struct Text<'de>(std::borrow::Cow<'de, str>);

impl<'de> serde::Deserialize<'de> for Text<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Text<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> std::result::Result<Text<'de>, E> {
                Ok(Text(std::borrow::Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> std::result::Result<Text<'de>, E> {
                Ok(Text(std::borrow::Cow::Owned(v.to_string())))
            }
        }
        d.deserialize_str(V)
    }
}

impl ObservedAccount {
    /// This account as classification reads it.
    pub fn as_row(&self) -> AccountRow<'_> {
        AccountRow {
            external_id: &self.external_id,
            login: &self.login,
            email: self.email.as_deref(),
            active: self.active,
            hris_id: self.hris_id.as_deref(),
            attributes: Attrs::Map(&self.attributes),
            late: self.late,
        }
    }
}

pub(crate) fn text<'a>(r: &'a rusqlite::Row<'_>, i: usize) -> rusqlite::Result<&'a str> {
    r.get_ref(i)?.as_str().map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Text, Box::new(e))
    })
}

pub(crate) fn bytes<'a>(r: &'a rusqlite::Row<'_>, i: usize) -> rusqlite::Result<&'a [u8]> {
    r.get_ref(i)?.as_bytes().map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Text, Box::new(e))
    })
}

pub(crate) fn opt_text<'a>(
    r: &'a rusqlite::Row<'_>,
    i: usize,
) -> rusqlite::Result<Option<&'a str>> {
    r.get_ref(i)?.as_str_or_null().map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Text, Box::new(e))
    })
}

/// Stream the accounts a run read in one system, in external-id order, each with the
/// indices (into `groups`, as [`observed_groups_in`] returns them) of the groups it was
/// seen in. Nothing is loaded whole, so memory stays flat however large the system:
/// a complete read streams from its pack (store/pack.rs), any other from its rows.
/// Returns the number of memberships whose account the run did not list (an account
/// that vanished between the two listings).
pub fn for_each_observed_account(
    conn: &rusqlite::Connection,
    run: i64,
    system: &str,
    groups: &[(String, String, bool)],
    mut f: impl FnMut(&AccountRow<'_>, &[u32]) -> Result<()>,
) -> Result<usize> {
    if let Some(unlisted) = super::pack::for_each(conn, run, system, groups.len(), &mut f)? {
        return Ok(unlisted);
    }
    for_each_observed_row(conn, run, system, groups, f)
}

/// [`for_each_observed_account`] from the rows: the accounts and the memberships (kept in
/// account order) read side by side, a merge join.
pub(crate) fn for_each_observed_row(
    conn: &rusqlite::Connection,
    run: i64,
    system: &str,
    groups: &[(String, String, bool)],
    mut f: impl FnMut(&AccountRow<'_>, &[u32]) -> Result<()>,
) -> Result<usize> {
    // Members are matched on bytes: only the accounts' own text needs to be valid UTF-8.
    let index: std::collections::HashMap<&[u8], u32, foldhash::fast::RandomState> = groups
        .iter()
        .enumerate()
        .map(|(i, g)| (g.0.as_bytes(), i as u32))
        .collect();
    let mut accounts = conn.prepare_cached(
        "SELECT external_id, login, email, active, hris_id, attributes, seen_in FROM observed_accounts
         WHERE run_id = ?1 AND system = ?2 AND seen_in != 'gone' ORDER BY external_id",
    )?;
    let mut members = conn.prepare_cached(
        "SELECT account_id, entitlement FROM observed_members
         WHERE run_id = ?1 AND system = ?2 ORDER BY account_id, entitlement",
    )?;
    let mut arows = accounts.query(params![run, system])?;
    let mut mrows = members.query(params![run, system])?;
    // The member row ahead: its account (a reused buffer) and its group, if listed.
    let mut m_account: Vec<u8> = Vec::new();
    let mut m_group: Option<u32> = None;
    let mut advance = |m_account: &mut Vec<u8>, m_group: &mut Option<u32>| -> Result<bool> {
        Ok(match mrows.next()? {
            Some(r) => {
                m_account.clear();
                m_account.extend_from_slice(bytes(r, 0)?);
                *m_group = index.get(bytes(r, 1)?).copied();
                true
            }
            None => false,
        })
    };
    let mut live = advance(&mut m_account, &mut m_group)?;
    let mut held: Vec<u32> = Vec::new();
    let mut unlisted = 0usize;
    while let Some(r) = arows.next()? {
        let external_id = text(r, 0)?;
        held.clear();
        while live && m_account.as_slice() < external_id.as_bytes() {
            unlisted += 1;
            live = advance(&mut m_account, &mut m_group)?;
        }
        while live && m_account == external_id.as_bytes() {
            held.extend(m_group);
            live = advance(&mut m_account, &mut m_group)?;
        }
        let row = AccountRow {
            external_id,
            login: text(r, 1)?,
            email: opt_text(r, 2)?,
            active: r.get(3)?,
            hris_id: opt_text(r, 4)?,
            attributes: Attrs::Json(opt_text(r, 5)?),
            late: bytes(r, 6)? == b"members",
        };
        f(&row, &held)?;
    }
    while live {
        unlisted += 1;
        live = advance(&mut m_account, &mut m_group)?;
    }
    Ok(unlisted)
}

/// The external ids of the accounts a run listed in a system.
pub fn observed_account_ids_in(
    conn: &rusqlite::Connection,
    run: i64,
    system: &str,
) -> Result<std::collections::HashSet<String>> {
    let mut st = conn.prepare_cached(
        "SELECT external_id FROM observed_accounts WHERE run_id = ?1 AND system = ?2",
    )?;
    let mut rows = st.query(params![run, system])?;
    let mut out = std::collections::HashSet::new();
    while let Some(r) = rows.next()? {
        out.insert(text(r, 0)?.to_string());
    }
    Ok(out)
}

pub fn observed_groups_in(
    conn: &rusqlite::Connection,
    run: i64,
    system: &str,
) -> Result<Vec<(String, String, bool)>> {
    let mut st = conn.prepare_cached(
        "SELECT entitlement, external_id, catalogued FROM observed_groups WHERE run_id = ?1 AND system = ?2 ORDER BY entitlement",
    )?;
    Ok(st
        .query_map(params![run, system], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })?
        .collect::<rusqlite::Result<_>>()?)
}

pub fn observed_members_in(
    conn: &rusqlite::Connection,
    run: i64,
    system: &str,
) -> Result<Vec<(String, String)>> {
    let mut st = conn.prepare_cached(
        "SELECT entitlement, account_id FROM observed_members WHERE run_id = ?1 AND system = ?2",
    )?;
    Ok(st
        .query_map(params![run, system], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<rusqlite::Result<_>>()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn account(id: &str, attributes: &[(&str, &str)]) -> ObservedAccount {
        ObservedAccount {
            external_id: id.into(),
            login: format!("{id}@x.io"),
            email: None,
            active: true,
            hris_id: None,
            attributes: attributes
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            late: false,
        }
    }

    /// Okta's read at `status`/`phase`, groups read up to `ent_index`.
    fn checkpoint(status: &str, phase: &str, ent_index: i64) -> Checkpoint {
        Checkpoint {
            system: "okta".into(),
            status: status.into(),
            phase: phase.into(),
            ent_index,
            cursor: None,
            accounts: 0,
            memberships: 0,
            pages: 1,
            all_groups: true,
            started_at: String::new(),
            observed_at: None,
            error: None,
        }
    }

    /// (external id, groups held, attributes) per account, in stream order.
    type Seen = (String, Vec<u32>, Vec<(String, String)>);

    /// Stream a read from its pack (where it has one) or, with `rows`, from its rows.
    fn stream(
        store: &Store,
        run: i64,
        groups: &[(String, String, bool)],
        rows: bool,
    ) -> (usize, Vec<Seen>) {
        let mut seen: Vec<Seen> = Vec::new();
        let f = |a: &AccountRow<'_>, held: &[u32]| {
            let mut attrs = Vec::new();
            a.attributes
                .for_each(|k, v| attrs.push((k.to_string(), v.to_string())));
            seen.push((a.external_id.to_string(), held.to_vec(), attrs));
            Ok(())
        };
        let unlisted = if rows {
            for_each_observed_row(store.conn(), run, "okta", groups, f)
        } else {
            for_each_observed_account(store.conn(), run, "okta", groups, f)
        }
        .unwrap();
        (unlisted, seen)
    }

    #[test]
    fn streaming_pairs_each_account_with_exactly_its_memberships() {
        let mut store = Store::open_in_memory().unwrap();
        let cp = checkpoint("complete", "done", 2);
        let groups = vec![
            ("okta:group:a".to_string(), "g1".to_string(), true),
            ("okta:group:b".to_string(), "g2".to_string(), false),
        ];
        // Ids whose byte order differs from a naive guess: upper case sorts before lower
        // case, "b10" before "b2", and non-Latin after Latin.
        let accounts = vec![
            account("b2", &[("department", "R&D \"Labs\"")]),
            account("B1", &[]),
            account("b10", &[("title", "Инженер")]),
            account("ж", &[]),
        ];
        let members = vec![
            ("okta:group:a".to_string(), "b2".to_string()),
            ("okta:group:b".to_string(), "b2".to_string()),
            ("okta:group:a".to_string(), "ж".to_string()),
            // Members of accounts the listing did not have: before, between and after.
            ("okta:group:a".to_string(), "A0".to_string()),
            ("okta:group:a".to_string(), "b11".to_string()),
            ("okta:group:b".to_string(), "zz".to_string()),
            // A group the read did not list.
            ("okta:group:gone".to_string(), "B1".to_string()),
        ];
        let run = store
            .write(|tx| {
                let run = tx.start_run(None, &["okta".to_string()], "t")?;
                tx.save_page(run, &cp, &accounts, &groups, &members)?;
                Ok(run)
            })
            .unwrap();
        // A complete read is packed; the pack and the rows stream the same.
        let packed: i64 = store
            .conn()
            .query_row("SELECT count(*) FROM observed_packs", [], |r| r.get(0))
            .unwrap();
        assert_eq!(packed, 1);
        let (unlisted, seen) = stream(&store, run, &groups, false);
        assert_eq!(
            (unlisted, &seen),
            (
                stream(&store, run, &groups, true).0,
                &stream(&store, run, &groups, true).1
            )
        );
        assert_eq!(unlisted, 3);
        let ids: Vec<&str> = seen.iter().map(|s| s.0.as_str()).collect();
        assert_eq!(ids, ["B1", "b10", "b2", "ж"]);
        assert_eq!(
            seen[0].1,
            Vec::<u32>::new(),
            "B1 is only in an unlisted group"
        );
        assert_eq!(seen[1].1, Vec::<u32>::new());
        assert_eq!(seen[2].1, vec![0, 1]);
        assert_eq!(seen[3].1, vec![0]);
        // Attributes come back as stored, escapes and all.
        assert_eq!(
            seen[2].2,
            vec![("department".to_string(), "R&D \"Labs\"".to_string())]
        );
        assert_eq!(
            seen[1].2,
            vec![("title".to_string(), "Инженер".to_string())]
        );
    }

    #[test]
    fn a_pack_spans_blobs_and_changed_rows_drop_it() {
        let mut store = Store::open_in_memory().unwrap();
        let mut cp = checkpoint("running", "members", 0);
        let groups: Vec<(String, String, bool)> = (0..3)
            .map(|g| (format!("okta:group:g{g}"), format!("id{g}"), true))
            .collect();
        // More accounts than one blob holds, in groups by a pattern.
        let accounts: Vec<ObservedAccount> = (0..5000)
            .map(|i| account(&format!("u{i:05}"), &[("title", "Инженер")]))
            .collect();
        let members: Vec<(String, String)> = (0..5000)
            .flat_map(|i| {
                (0..3)
                    .filter(move |g| (i + g) % 2 == 0)
                    .map(move |g| (format!("okta:group:g{g}"), format!("u{i:05}")))
            })
            .collect();
        let run = store
            .write(|tx| {
                let run = tx.start_run(None, &["okta".to_string()], "t")?;
                tx.save_page(run, &cp, &accounts, &groups, &members)?;
                Ok(run)
            })
            .unwrap();
        let packs = |store: &Store| -> i64 {
            store
                .conn()
                .query_row("SELECT count(*) FROM observed_packs", [], |r| r.get(0))
                .unwrap()
        };
        assert_eq!(packs(&store), 0, "an unfinished read is not packed");
        cp.status = "complete".into();
        store.write(|tx| tx.save_checkpoint(run, &cp)).unwrap();
        assert_eq!(packs(&store), 3, "5,000 accounts: three blobs");
        let from_rows = stream(&store, run, &groups, true);
        assert_eq!(from_rows.1.len(), 5000);
        assert_eq!(stream(&store, run, &groups, false), from_rows);
        // An account marked gone afterwards: the pack goes, the rows leave it out.
        store
            .write(|tx| tx.mark_gone(run, "okta", &["u00007".to_string()]))
            .unwrap();
        assert_eq!(packs(&store), 0);
        let after = stream(&store, run, &groups, false);
        assert_eq!(after.1.len(), 4999);
        assert!(after.1.iter().all(|s| s.0 != "u00007"));
        // A pack made for another number of groups is not used.
        store.write(|tx| tx.save_checkpoint(run, &cp)).unwrap();
        assert_eq!(stream(&store, run, &groups[..2], false).1.len(), 4999);
    }

    #[test]
    fn attributes_that_are_not_an_object_of_strings_read_as_none() {
        for bad in ["[1,2]", "{\"a\": 1}", "not json", "{\"a\": \"b\""] {
            let mut n = 0;
            Attrs::Json(Some(bad)).for_each(|_, _| n += 1);
            assert!(n <= 1, "{bad}: {n}");
        }
        let mut n = 0;
        Attrs::Json(Some("{\"a\": 1}")).for_each(|_, _| n += 1);
        assert_eq!(n, 0);
    }
}
