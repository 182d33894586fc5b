//! An applied plan's operations that are not queue rows yet (migration 10).
//!
//! Applying a plan must not take time in its size: a company-wide plan has hundreds of
//! thousands of operations, and inserting each with its indexes and dependencies takes
//! many seconds. So applying makes rows for the first people only and records the plan in
//! `plan_backlog`; the scheduler makes the rest, person by person, as its systems run
//! short of ready work (`engine::apply::materialise`). A person's operations always
//! become rows together, so an operation never waits on one that is not a row.
//!
//! Until then a backlog operation is queued work all the same:
//! - it is counted in `op_counts` as queued when the plan is applied, and per system in
//!   `backlog_counts` until it becomes a row;
//! - the planner and reconciliation see it in flight ([`BACKLOG_OPS`]), so it is never
//!   planned twice;
//! - a person's view lists it ([`Store::backlog_for_person`]);
//! - when its person leaves, [`Tx::backlog_take_person`] makes their rows at once, so
//!   their grants are cancelled in the same transaction as any other queued grant.

use super::{Store, Tx};
use crate::Result;
use crate::model::OperationStatus;
use rusqlite::{OptionalExtension, params};

/// The backlog's operations (plan_id, seq, kind, system, person_id, entitlement), for
/// readers that must count them as in flight.
pub const BACKLOG_OPS: &str =
    "SELECT p.plan_id, p.seq, p.kind, p.system, p.person_id, p.entitlement
     FROM plan_backlog b JOIN plan_ops p
       ON p.plan_id = b.plan_id AND p.person_id > b.cursor AND p.materialised = 0";

/// One planned operation of an applied plan, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BacklogRow {
    pub plan_id: String,
    pub seq: i64,
    pub kind: String,
    pub system: String,
    pub person_id: String,
    pub entitlement: Option<String>,
    pub requires_approval: bool,
    pub not_before: Option<String>,
    pub detail: Option<String>,
}

const ROW_COLUMNS: &str = "p.plan_id, p.seq, p.kind, p.system, p.person_id, p.entitlement, p.requires_approval, p.not_before, p.detail";

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<BacklogRow> {
    Ok(BacklogRow {
        plan_id: r.get(0)?,
        seq: r.get(1)?,
        kind: r.get(2)?,
        system: r.get(3)?,
        person_id: r.get(4)?,
        entitlement: r.get(5)?,
        requires_approval: r.get(6)?,
        not_before: r.get(7)?,
        detail: r.get(8)?,
    })
}

impl Tx<'_> {
    /// Put an applied plan's operations that are not rows yet into the backlog: count them
    /// as queued (per system) and remember where the next rows start. Returns how many.
    pub fn backlog_open(&mut self, plan_id: &str) -> Result<u64> {
        let per_system: Vec<(String, i64)> = {
            let mut stmt = self.tx.prepare_cached(
                "SELECT system, count(*) FROM plan_ops WHERE plan_id = ?1 AND materialised = 0 GROUP BY system",
            )?;
            let rows = stmt.query_map([plan_id], |r| Ok((r.get(0)?, r.get(1)?)))?;
            rows.collect::<rusqlite::Result<_>>()?
        };
        let total: i64 = per_system.iter().map(|(_, n)| n).sum();
        if total == 0 {
            return Ok(0);
        }
        self.tx
            .prepare_cached(
                "INSERT INTO plan_backlog (plan_id, cursor, applied_at) VALUES (?1, '', ?2)",
            )?
            .execute(params![plan_id, super::queue::ts(self.now)])?;
        for (system, n) in per_system {
            self.count_op(&system, OperationStatus::Queued, n);
            self.backlog_count(&system, n)?;
        }
        Ok(total as u64)
    }

    fn backlog_count(&mut self, system: &str, delta: i64) -> Result<()> {
        self.tx
            .prepare_cached(
                "INSERT INTO backlog_counts (system, n) VALUES (?1, ?2)
                 ON CONFLICT(system) DO UPDATE SET n = n + excluded.n",
            )?
            .execute(params![system, delta])?;
        Ok(())
    }

    /// Take the next people's operations from the oldest applied plan in the backlog (or
    /// from `plan`): whole people, at least `min_ops` operations unless the plan has fewer
    /// left. The caller makes them rows in the same transaction. None when nothing is left.
    pub fn backlog_next(
        &mut self,
        plan: Option<&str>,
        min_ops: usize,
    ) -> Result<Option<Vec<BacklogRow>>> {
        // A plan whose remaining people were all taken out of turn (leavers) has nothing
        // left: it leaves the backlog, and the next plan is asked.
        loop {
            let head: Option<(String, String)> = self
                .tx
                .prepare_cached(
                    "SELECT plan_id, cursor FROM plan_backlog WHERE ?1 IS NULL OR plan_id = ?1
                     ORDER BY applied_at, rowid LIMIT 1",
                )?
                .query_row([plan], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()?;
            let Some((plan_id, cursor)) = head else {
                return Ok(None);
            };
            let mut taken: Vec<BacklogRow> = Vec::new();
            let mut exhausted = true;
            {
                let mut stmt = self.tx.prepare_cached(&format!(
                    "SELECT {ROW_COLUMNS} FROM plan_ops p
                     WHERE p.plan_id = ?1 AND p.person_id > ?2 AND p.materialised = 0
                     ORDER BY p.person_id, p.seq"
                ))?;
                let mut rows = stmt.query(params![plan_id, cursor])?;
                while let Some(r) = rows.next()? {
                    let op = row(r)?;
                    if taken.len() >= min_ops
                        && taken.last().is_some_and(|l| l.person_id != op.person_id)
                    {
                        exhausted = false;
                        break;
                    }
                    taken.push(op);
                }
            }
            if exhausted {
                self.tx
                    .prepare_cached("DELETE FROM plan_backlog WHERE plan_id = ?1")?
                    .execute([&plan_id])?;
            } else if let Some(last) = taken.last() {
                self.tx
                    .prepare_cached("UPDATE plan_backlog SET cursor = ?2 WHERE plan_id = ?1")?
                    .execute(params![plan_id, last.person_id])?;
            }
            if taken.is_empty() {
                continue;
            }
            self.backlog_taken(&taken)?;
            return Ok(Some(taken));
        }
    }

    /// Take one person's operations from every plan in the backlog, out of turn (they
    /// are marked, so the plan's turn skips them).
    pub fn backlog_take_person(&mut self, person: &str) -> Result<Vec<BacklogRow>> {
        let plans: Vec<String> = {
            let mut stmt = self.tx.prepare_cached(
                "SELECT plan_id FROM plan_backlog WHERE cursor < ?1 ORDER BY applied_at, rowid",
            )?;
            let rows = stmt.query_map([person], |r| r.get(0))?;
            rows.collect::<rusqlite::Result<_>>()?
        };
        let mut taken = Vec::new();
        for plan in plans {
            taken.extend(self.plan_take_person(&plan, person)?);
        }
        self.backlog_taken(&taken)?;
        Ok(taken)
    }

    /// One person's operations in `plan`, marked as made into rows (applying: people
    /// whose operations wait for an approver or a date get their rows at once).
    pub fn plan_take_person(&mut self, plan: &str, person: &str) -> Result<Vec<BacklogRow>> {
        let rows: Vec<BacklogRow> = {
            let mut stmt = self.tx.prepare_cached(&format!(
                "SELECT {ROW_COLUMNS} FROM plan_ops p
                 WHERE p.plan_id = ?1 AND p.person_id = ?2 AND p.materialised = 0 ORDER BY p.seq"
            ))?;
            let r = stmt.query_map(params![plan, person], row)?;
            r.collect::<rusqlite::Result<_>>()?
        };
        self.tx
            .prepare_cached(
                "UPDATE plan_ops SET materialised = 1 WHERE plan_id = ?1 AND person_id = ?2",
            )?
            .execute(params![plan, person])?;
        Ok(rows)
    }

    fn backlog_taken(&mut self, taken: &[BacklogRow]) -> Result<()> {
        let mut per: std::collections::BTreeMap<&str, i64> = Default::default();
        for r in taken {
            *per.entry(&r.system).or_default() += 1;
        }
        for (system, n) in per {
            self.backlog_count(system, -n)?;
        }
        Ok(())
    }
}

impl Store {
    /// Every stored operation of a plan, in seq order.
    pub fn for_each_plan_row(&self, plan_id: &str, mut f: impl FnMut(BacklogRow)) -> Result<()> {
        let mut stmt = self.conn.prepare(&format!(
            "SELECT {ROW_COLUMNS} FROM plan_ops p WHERE p.plan_id = ?1 ORDER BY p.seq"
        ))?;
        let mut rows = stmt.query([plan_id])?;
        while let Some(r) = rows.next()? {
            f(row(r)?);
        }
        Ok(())
    }

    /// Operations per system still in the backlog (not queue rows yet), where any.
    pub fn backlog_counts(&self) -> Result<Vec<(String, u64)>> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT system, n FROM backlog_counts WHERE n > 0 ORDER BY system")?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get::<_, i64>(1)? as u64)))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Operations of `system` still in the backlog.
    pub fn backlog_count_for(&self, system: &str) -> Result<u64> {
        let n: Option<i64> = self
            .conn
            .prepare_cached("SELECT n FROM backlog_counts WHERE system = ?1")?
            .query_row([system], |r| r.get(0))
            .optional()?;
        Ok(n.unwrap_or(0).max(0) as u64)
    }

    /// A person's operations still in the backlog, with when their plan was applied.
    pub fn backlog_for_person(&self, person: &str) -> Result<Vec<(BacklogRow, String)>> {
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT {ROW_COLUMNS}, b.applied_at FROM plan_backlog b JOIN plan_ops p
               ON p.plan_id = b.plan_id AND p.person_id = ?1 AND p.person_id > b.cursor
              AND p.materialised = 0
             ORDER BY b.applied_at, p.seq"
        ))?;
        let rows = stmt.query_map([person], |r| Ok((row(r)?, r.get(9)?)))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }
}
