//! The durable operation queue. Every status change is written with its audit event in one
//! transaction, so a crash at any moment loses nothing: an operation is either still
//! where it was, or has moved and says so in the audit log.

use super::{NewAuditEvent, Store, Tx};
use crate::model::{OperationKind, OperationStatus};
use crate::{Error, Result};
use chrono::{DateTime, Utc};
use rusqlite::{OptionalExtension, params};
use serde::Serialize;
use serde_json::json;

/// Priorities: lower runs first. Leavers jump the queue.
pub const PRIORITY_LEAVER: i64 = 0;
pub const PRIORITY_NORMAL: i64 = 5;

/// An operation's priority: a leaver's deactivation goes first.
pub fn priority_of(kind: OperationKind) -> i64 {
    if kind == OperationKind::Deactivate {
        PRIORITY_LEAVER
    } else {
        PRIORITY_NORMAL
    }
}

/// The cause an applied plan's operations carry.
pub fn plan_cause(plan_id: &str) -> String {
    format!("plan:{plan_id}")
}

/// An operation to enqueue.
#[derive(Debug, Clone)]
pub struct NewOp<'a> {
    pub kind: OperationKind,
    pub system: &'a str,
    pub person_id: &'a str,
    pub entitlement: Option<&'a str>,
    pub status: OperationStatus,
    pub priority: i64,
    pub plan_id: Option<&'a str>,
    /// What caused it: `plan:ID`, `event:...`, `reconcile:RUN`.
    pub cause: &'a str,
    pub depends_on: &'a [i64],
    /// Not before this time (status `scheduled`); None: as soon as it is ready.
    pub not_before: Option<DateTime<Utc>>,
    /// Already counted in `op_counts` under this status (a plan's backlog is counted as
    /// queued when the plan is applied); None: count it now.
    pub counted_as: Option<OperationStatus>,
}

/// A stored operation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OpRow {
    pub id: i64,
    pub idempotency_key: String,
    pub kind: OperationKind,
    pub system: String,
    pub person_id: String,
    pub entitlement: Option<String>,
    pub status: OperationStatus,
    pub attempts: u32,
    pub next_attempt_at: Option<String>,
    pub priority: i64,
    pub last_error_class: Option<String>,
    pub last_error_status: Option<u16>,
    pub last_error_code: Option<String>,
    pub last_error_message: Option<String>,
    pub blocked_reason: Option<String>,
    pub cause: Option<String>,
    pub plan_id: Option<String>,
    pub verify_until: Option<String>,
    pub updated_at: String,
}

/// The error an attempt ended with, as stored.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ErrorInfo {
    pub class: String,
    pub status: Option<u16>,
    pub code: Option<String>,
    pub message: String,
    pub excerpt: String,
    /// The request line that got this error.
    pub request: String,
}

/// Operations that have not started and may still be cancelled without touching a target.
pub const NOT_STARTED: [OperationStatus; 5] = [
    OperationStatus::Queued,
    OperationStatus::Scheduled,
    OperationStatus::RetryWait,
    OperationStatus::PendingApproval,
    OperationStatus::Blocked,
];

pub fn status_from_str(s: &str) -> Option<OperationStatus> {
    s.parse().ok()
}

pub fn is_terminal(s: OperationStatus) -> bool {
    matches!(
        s,
        OperationStatus::Succeeded | OperationStatus::Failed | OperationStatus::Cancelled
    )
}

const OP_COLUMNS: &str = "id, idempotency_key, kind, system, person_id, entitlement, status, attempts, next_attempt_at, priority, \
    last_error_class, last_error_status, last_error_code, last_error_message, blocked_reason, cause, plan_id, verify_until, updated_at";

fn row_to_op(r: &rusqlite::Row<'_>) -> rusqlite::Result<OpRow> {
    let kind: String = r.get(2)?;
    let status: String = r.get(6)?;
    let bad = |i: usize, what: &str| {
        rusqlite::Error::FromSqlConversionFailure(
            i,
            rusqlite::types::Type::Text,
            format!("unknown {what}").into(),
        )
    };
    Ok(OpRow {
        id: r.get(0)?,
        idempotency_key: r.get(1)?,
        kind: kind
            .parse::<crate::model::OperationKind>()
            .ok()
            .ok_or_else(|| bad(2, "operation kind"))?,
        system: r.get(3)?,
        person_id: r.get(4)?,
        entitlement: r.get(5)?,
        status: status_from_str(&status).ok_or_else(|| bad(6, "operation status"))?,
        attempts: r.get(7)?,
        next_attempt_at: r.get(8)?,
        priority: r.get(9)?,
        last_error_class: r.get(10)?,
        last_error_status: r.get(11)?,
        last_error_code: r.get(12)?,
        last_error_message: r.get(13)?,
        blocked_reason: r.get(14)?,
        cause: r.get(15)?,
        plan_id: r.get(16)?,
        verify_until: r.get(17)?,
        updated_at: r.get(18)?,
    })
}

pub fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

/// The idempotency key of an operation: what it does, to whom, where, and which plan made it.
pub fn idempotency_key(
    kind: OperationKind,
    system: &str,
    person: &str,
    ent: Option<&str>,
    cause: &str,
) -> String {
    format!(
        "{}|{system}|{person}|{}|{cause}",
        kind.as_str(),
        ent.unwrap_or("-")
    )
}

impl Tx<'_> {
    /// Enqueue one operation. An operation with the same idempotency key is not enqueued
    /// twice: the existing id is returned.
    pub fn enqueue(&mut self, op: &NewOp<'_>, actor: &str) -> Result<i64> {
        let (id, new) = self.enqueue_unaudited(op)?;
        if new {
            self.audit(NewAuditEvent {
                actor,
                action: "op.enqueued",
                subject: op.person_id,
                details: json!({"op": id, "kind": op.kind.as_str(), "system": op.system, "entitlement": op.entitlement,
                                "status": op.status.as_str(), "cause": op.cause, "depends_on": op.depends_on}),
            })?;
        }
        Ok(id)
    }

    /// Enqueue one operation without its own audit event, for a caller that audits many
    /// at once (applying a plan: one `plan.applied` event carrying a digest of every
    /// operation it enqueued). Returns the id and whether it is new.
    pub fn enqueue_unaudited(&mut self, op: &NewOp<'_>) -> Result<(i64, bool)> {
        let key = idempotency_key(op.kind, op.system, op.person_id, op.entitlement, op.cause);
        let now = ts(self.now);
        // How many of its dependencies have not succeeded yet (its readiness; kept by
        // `transition` from here on).
        let mut unmet = 0i64;
        let mut deps: Vec<i64> = op.depends_on.to_vec();
        deps.sort_unstable();
        deps.dedup();
        for d in &deps {
            let done: Option<bool> = self
                .tx
                .prepare_cached("SELECT status = 'succeeded' FROM operations WHERE id = ?1")?
                .query_row([*d], |r| r.get(0))
                .optional()?;
            if done != Some(true) {
                unmet += 1;
            }
        }
        let inserted = self.tx.prepare_cached(
            "INSERT INTO operations (idempotency_key, kind, system, person_id, entitlement, status, attempts, next_attempt_at,
               priority, cause, plan_id, created_at, updated_at, unmet_deps)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, 0, ?11, ?8, ?9, ?10, ?7, ?7, ?12)
             ON CONFLICT(idempotency_key) DO NOTHING",
        )?
        .execute(params![key, op.kind.as_str(), op.system, op.person_id, op.entitlement, op.status.as_str(), now, op.priority, op.cause, op.plan_id, op.not_before.map(ts).unwrap_or_else(|| now.clone()), unmet])?;
        if inserted == 0 {
            if let Some(c) = op.counted_as {
                self.count_op(op.system, c, -1);
            }
            let id = self
                .tx
                .prepare_cached("SELECT id FROM operations WHERE idempotency_key = ?1")?
                .query_row([&key], |r| r.get::<_, i64>(0))?;
            return Ok((id, false));
        }
        let id = self.tx.last_insert_rowid();
        match op.counted_as {
            None => self.count_op(op.system, op.status, 1),
            Some(c) if c != op.status => {
                self.count_op(op.system, c, -1);
                self.count_op(op.system, op.status, 1);
            }
            Some(_) => {}
        }
        for d in &deps {
            self.tx
                .prepare_cached(
                    "INSERT OR IGNORE INTO op_deps (op_id, depends_on) VALUES (?1, ?2)",
                )?
                .execute(params![id, d])?;
        }
        Ok((id, true))
    }

    pub(crate) fn count_op(&mut self, system: &str, status: OperationStatus, delta: i64) {
        *self
            .op_count_deltas
            .entry((system.to_string(), status.as_str()))
            .or_insert(0) += delta;
    }

    /// Write the transaction's changes to the kept counts (once, before commit).
    pub(crate) fn flush_op_counts(&mut self) -> Result<()> {
        for ((system, status), n) in std::mem::take(&mut self.op_count_deltas) {
            if n != 0 {
                self.tx
                    .prepare_cached(
                        "INSERT INTO op_counts (system, status, n) VALUES (?1, ?2, ?3)
                         ON CONFLICT(system, status) DO UPDATE SET n = n + excluded.n",
                    )?
                    .execute(params![system, status, n])?;
            }
        }
        Ok(())
    }

    /// Count every operation again into `op_counts`, after rows were written around
    /// [`Tx::enqueue`] (bulk SQL in benchmarks and tests).
    pub fn recount_ops(&mut self) -> Result<()> {
        // The recount sees every row, this transaction's too.
        self.op_count_deltas.clear();
        self.tx.execute_batch(
            "DELETE FROM op_counts;
             INSERT INTO op_counts (system, status, n)
                 SELECT system, status, count(*) FROM operations GROUP BY system, status;",
        )?;
        Ok(())
    }

    /// Move an operation from one of `from` to `to`. Returns false (and writes nothing) if it
    /// was not in one of `from`, so two workers can never both claim one operation.
    pub fn transition(
        &mut self,
        id: i64,
        from: &[OperationStatus],
        to: OperationStatus,
        change: Change<'_>,
        actor: &str,
    ) -> Result<bool> {
        let current: Option<(String, String, Option<String>)> = self
            .tx
            .prepare_cached("SELECT status, person_id, system FROM operations WHERE id = ?1")?
            .query_row([id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .optional()?;
        let Some((status, person, system)) = current else {
            return Err(Error::usage(
                format!("no operation #{id}"),
                "see `accessdesk queue list`",
            ));
        };
        let Some(cur) = status_from_str(&status) else {
            return Ok(false);
        };
        if !from.contains(&cur) {
            return Ok(false);
        }
        let now = ts(self.now);
        // ?11 says whether this transition sets (or clears) the last error; ?12 whether
        // it counts an attempt.
        const UPDATE: &str = "UPDATE operations SET status = ?2, updated_at = ?3,
             attempts = attempts + ?12, next_attempt_at = ?4, blocked_reason = ?5, verify_until = ?6,
             last_error_class = CASE ?11 WHEN 1 THEN ?7 ELSE last_error_class END,
             last_error_status = CASE ?11 WHEN 1 THEN ?8 ELSE last_error_status END,
             last_error_code = CASE ?11 WHEN 1 THEN ?9 ELSE last_error_code END,
             last_error_message = CASE ?11 WHEN 1 THEN ?10 ELSE last_error_message END
             WHERE id = ?1";
        let e = change.error.cloned().unwrap_or_default();
        let none = change.clear_error && change.error.is_none();
        self.tx.prepare_cached(UPDATE)?.execute(params![
            id,
            to.as_str(),
            now,
            change.next_attempt_at.map(ts),
            change.blocked_reason,
            change.verify_until.map(ts),
            if none { None } else { Some(e.class.clone()) },
            if none { None } else { e.status },
            if none { None } else { e.code.clone() },
            if none { None } else { Some(e.message.clone()) },
            change.error.is_some() || change.clear_error,
            i64::from(change.count_attempt),
        ])?;
        if let Some(system) = &system
            && cur != to
        {
            self.count_op(system, cur, -1);
            self.count_op(system, to, 1);
        }
        // Readiness: dependents wait for one fewer dependency once this one has succeeded
        // (and one more, should it ever leave `succeeded`).
        let delta = match (
            cur == OperationStatus::Succeeded,
            to == OperationStatus::Succeeded,
        ) {
            (false, true) => -1,
            (true, false) => 1,
            _ => 0,
        };
        if delta != 0 {
            self.tx
                .prepare_cached(
                    "UPDATE operations SET unmet_deps = max(0, unmet_deps + ?2)
                     WHERE id IN (SELECT op_id FROM op_deps WHERE depends_on = ?1)",
                )?
                .execute(params![id, delta])?;
        }
        if change.audited_by_caller {
            return Ok(true);
        }
        let mut details = json!({"op": id, "system": system, "from": status, "to": to.as_str()});
        if let Some(err) = change.error {
            details["error"] = json!({"class": err.class, "status": err.status, "code": err.code, "message": err.message});
        }
        if let Some(r) = change.blocked_reason {
            details["reason"] = json!(r);
        }
        if let Some(why) = change.why {
            details["why"] = json!(why);
        }
        self.audit(NewAuditEvent {
            actor,
            action: "op.status",
            subject: &person,
            details,
        })?;
        Ok(true)
    }

    /// Cancel every operation that would still give `person` something (create, add,
    /// reactivate, update) and has not started: queued, scheduled, waiting to retry,
    /// waiting for approval or blocked. Each is audited with `why`. Used in the same
    /// transaction as the change that makes them a leaver.
    pub fn cancel_granting_ops(&mut self, person: &str, why: &str, actor: &str) -> Result<usize> {
        // Their operations still in an applied plan's backlog become rows now, so they
        // are cancelled (and audited) like any other. None of them waits on another:
        // the grants among them are cancelled below, and a removal needs no account
        // creation.
        for r in self.backlog_take_person(person)? {
            let Ok(kind) = r.kind.parse::<OperationKind>() else {
                continue;
            };
            let cause = plan_cause(&r.plan_id);
            self.enqueue_unaudited(&NewOp {
                kind,
                system: &r.system,
                person_id: &r.person_id,
                entitlement: r.entitlement.as_deref(),
                status: OperationStatus::Queued,
                priority: priority_of(kind),
                plan_id: Some(&r.plan_id),
                cause: &cause,
                depends_on: &[],
                not_before: None,
                counted_as: Some(OperationStatus::Queued),
            })?;
        }
        let ids: Vec<(i64, String)> = {
            let mut stmt = self.tx.prepare_cached(
                "SELECT id, kind FROM operations WHERE person_id = ?1
                 AND status IN ('queued', 'scheduled', 'retry_wait', 'pending_approval', 'blocked')",
            )?;
            let rows = stmt.query_map([person], |r| Ok((r.get(0)?, r.get(1)?)))?;
            rows.collect::<rusqlite::Result<Vec<_>>>()?
        };
        let mut n = 0;
        for (id, kind) in ids {
            if !kind
                .parse::<crate::model::OperationKind>()
                .is_ok_and(|k| k.grants())
            {
                continue;
            }
            if self.transition(
                id,
                &NOT_STARTED,
                OperationStatus::Cancelled,
                Change {
                    why: Some(why),
                    ..Default::default()
                },
                actor,
            )? {
                n += 1;
            }
        }
        Ok(n)
    }

    /// When the first recorded attempt of an operation started.
    pub fn first_attempt_at(&self, op_id: i64) -> Result<Option<String>> {
        Ok(self
            .tx
            .prepare_cached("SELECT min(started_at) FROM op_attempts WHERE op_id = ?1")?
            .query_row([op_id], |r| r.get(0))?)
    }

    /// Reschedule a look at a `verifying` operation (not a status change).
    pub fn set_next_attempt(&mut self, id: i64, next: DateTime<Utc>, _actor: &str) -> Result<()> {
        self.tx
            .prepare_cached(
                "UPDATE operations SET next_attempt_at = ?2 WHERE id = ?1 AND status = 'verifying'",
            )?
            .execute(params![id, ts(next)])?;
        Ok(())
    }

    /// Record one attempt's outcome (for the console's attempt history).
    pub fn record_attempt(
        &mut self,
        op_id: i64,
        attempt: u32,
        started: DateTime<Utc>,
        outcome: &str,
        err: Option<&ErrorInfo>,
    ) -> Result<()> {
        self.tx.prepare_cached(
            "INSERT OR REPLACE INTO op_attempts (op_id, attempt, started_at, finished_at, outcome, error_class, http_status, vendor_code, message, excerpt, request)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
        )?
        .execute(params![
            op_id, attempt, ts(started), ts(self.now), outcome,
            err.map(|e| e.class.clone()), err.and_then(|e| e.status), err.and_then(|e| e.code.clone()),
            err.map(|e| e.message.clone()), err.map(|e| e.excerpt.clone()),
            err.map(|e| e.request.clone()).filter(|r| !r.is_empty())
        ])?;
        Ok(())
    }

    /// Every operation waiting (directly or through others) on `id`, which are not finished.
    /// Move one operation from one of `from` to cancelled with `why`, and with it every
    /// not-yet-started operation that depends on it ("cancelled with #ID: why"). Returns
    /// whether the operation itself was cancelled (its dependents are left alone if not).
    pub fn cancel_with_dependents(
        &mut self,
        id: i64,
        from: &[OperationStatus],
        why: &str,
        dependents_why: &str,
        actor: &str,
    ) -> Result<bool> {
        let ok = self.transition(
            id,
            from,
            OperationStatus::Cancelled,
            Change {
                why: Some(why),
                ..Default::default()
            },
            actor,
        )?;
        if ok {
            for d in self.dependents(id)? {
                self.transition(
                    d,
                    &NOT_STARTED,
                    OperationStatus::Cancelled,
                    Change {
                        why: Some(dependents_why),
                        ..Default::default()
                    },
                    actor,
                )?;
            }
        }
        Ok(ok)
    }

    pub fn dependents(&mut self, id: i64) -> Result<Vec<i64>> {
        let mut stmt = self.tx.prepare_cached(
            "WITH RECURSIVE deps(id) AS (SELECT op_id FROM op_deps WHERE depends_on = ?1
               UNION SELECT d.op_id FROM op_deps d JOIN deps ON d.depends_on = deps.id)
             SELECT o.id FROM operations o JOIN deps ON o.id = deps.id
             WHERE o.status NOT IN ('succeeded','failed','cancelled') ORDER BY o.id",
        )?;
        let rows = stmt.query_map([id], |r| r.get(0))?;
        Ok(rows.collect::<rusqlite::Result<Vec<i64>>>()?)
    }
}

/// What else changes with a transition.
#[derive(Debug, Clone, Copy, Default)]
pub struct Change<'a> {
    pub count_attempt: bool,
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub error: Option<&'a ErrorInfo>,
    pub clear_error: bool,
    pub blocked_reason: Option<&'a str>,
    pub verify_until: Option<DateTime<Utc>>,
    /// Who asked and why (admin actions, approvals).
    pub why: Option<&'a str>,
    /// The caller audits this transition itself, with others in one event (the
    /// scheduler's claims: one `op.claimed` event per batch).
    pub audited_by_caller: bool,
}

impl Store {
    pub fn op(&self, id: i64) -> Result<Option<OpRow>> {
        Ok(self
            .conn
            .query_row(
                &format!("SELECT {OP_COLUMNS} FROM operations WHERE id = ?1"),
                [id],
                row_to_op,
            )
            .optional()?)
    }

    /// Operations that may run now: queued, or waiting to retry (or scheduled) and due,
    /// with every dependency succeeded. Leavers first, then oldest first.
    pub fn ready_ops(&self, now: DateTime<Utc>, limit: usize) -> Result<Vec<OpRow>> {
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT {OP_COLUMNS} FROM operations o
             WHERE o.unmet_deps = 0
               AND (o.status = 'queued' OR (o.status IN ('retry_wait', 'scheduled') AND o.next_attempt_at <= ?1))
             ORDER BY o.priority, o.id LIMIT ?2"
        ))?;
        let rows = stmt.query_map(params![ts(now), limit as i64], row_to_op)?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }

    /// Like [`Store::ready_ops`], for one system. Within a priority, a person's operations
    /// come together (their membership right after their account), so a system's
    /// rate-limit buckets (accounts, groups) are used side by side rather than one after
    /// the other.
    ///
    /// Each read is an index range over runnable rows only (`unmet_deps = 0`, kept by
    /// [`Tx::transition`]), so its cost does not grow with the operations still waiting
    /// on others: queued ones in priority order, then retries and scheduled ones that are
    /// due (over every system, through the status index, so only due rows are read),
    /// oldest due first.
    pub fn ready_ops_for(
        &self,
        system: &str,
        now: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<OpRow>> {
        let mut out = Vec::with_capacity(limit * 2);
        {
            let mut stmt = self.conn.prepare_cached(&format!(
                "SELECT {OP_COLUMNS} FROM operations o INDEXED BY operations_runnable
                 WHERE o.system = ?1 AND o.status = 'queued' AND o.unmet_deps = 0
                 ORDER BY o.priority, o.person_id, o.id LIMIT ?2"
            ))?;
            for r in stmt.query_map(params![system, limit as i64], row_to_op)? {
                out.push(r?);
            }
        }
        for status in ["retry_wait", "scheduled"] {
            let mut stmt = self.conn.prepare_cached(&format!(
                "SELECT {OP_COLUMNS} FROM operations o INDEXED BY operations_status
                 WHERE o.status = ?2 AND o.next_attempt_at <= ?3 AND o.system = ?1 AND o.unmet_deps = 0
                 ORDER BY o.next_attempt_at LIMIT ?4"
            ))?;
            for r in stmt.query_map(params![system, status, ts(now), limit as i64], row_to_op)? {
                out.push(r?);
            }
        }
        out.sort_by(|a, b| (a.priority, &a.person_id, a.id).cmp(&(b.priority, &b.person_id, b.id)));
        out.truncate(limit);
        Ok(out)
    }

    /// Verifying operations of one system whose next look is due.
    pub fn verifying_due(
        &self,
        system: &str,
        now: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<OpRow>> {
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT {OP_COLUMNS} FROM operations WHERE system = ?3 AND status = 'verifying' AND next_attempt_at <= ?1
             ORDER BY next_attempt_at LIMIT ?2"
        ))?;
        let rows = stmt.query_map(params![ts(now), limit as i64, system], row_to_op)?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }

    /// When the scheduler next has something to do that is waiting for its time.
    pub fn next_wakeup(&self) -> Result<Option<String>> {
        // Scheduled operations (days away, typically) are not waited for: a scheduler
        // that keeps polling picks them up when due; one running until idle stops.
        Ok(self
            .conn
            .prepare_cached(
                "SELECT min(next_attempt_at) FROM operations WHERE status IN ('retry_wait', 'verifying')",
            )?
            .query_row([], |r| r.get(0))?)
    }

    /// How many of a system's queued operations could run now (none of their
    /// dependencies unmet), counting no further than `cap`.
    pub fn ready_count(&self, system: &str, cap: usize) -> Result<usize> {
        let n: i64 = self
            .conn
            .prepare_cached(
                "SELECT count(*) FROM (SELECT 1 FROM operations INDEXED BY operations_runnable
                 WHERE system = ?1 AND status = 'queued' AND unmet_deps = 0 LIMIT ?2)",
            )?
            .query_row(params![system, cap as i64], |r| r.get(0))?;
        Ok(n.max(0) as usize)
    }

    /// A person's operations, newest first (at most `limit`). Those still in an applied
    /// plan's backlog come first, as queued, with id 0 (they have no row yet).
    pub fn ops_for_person(&self, person_id: &str, limit: usize) -> Result<Vec<OpRow>> {
        let mut out: Vec<OpRow> = Vec::new();
        for (r, applied_at) in self.backlog_for_person(person_id)? {
            let Ok(kind) = r.kind.parse::<OperationKind>() else {
                continue;
            };
            let cause = plan_cause(&r.plan_id);
            out.push(OpRow {
                id: 0,
                idempotency_key: idempotency_key(
                    kind,
                    &r.system,
                    &r.person_id,
                    r.entitlement.as_deref(),
                    &cause,
                ),
                kind,
                system: r.system,
                person_id: r.person_id,
                entitlement: r.entitlement,
                status: OperationStatus::Queued,
                attempts: 0,
                next_attempt_at: None,
                priority: priority_of(kind),
                last_error_class: None,
                last_error_status: None,
                last_error_code: None,
                last_error_message: None,
                blocked_reason: None,
                cause: Some(cause),
                plan_id: Some(r.plan_id),
                verify_until: None,
                updated_at: applied_at,
            });
        }
        out.truncate(limit);
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT {OP_COLUMNS} FROM operations WHERE person_id = ?1 ORDER BY id DESC LIMIT ?2"
        ))?;
        let rows = stmt.query_map(
            params![person_id, limit.saturating_sub(out.len()) as i64],
            row_to_op,
        )?;
        for r in rows {
            out.push(r?);
        }
        Ok(out)
    }

    pub fn ops_with_status(
        &self,
        statuses: &[OperationStatus],
        limit: usize,
    ) -> Result<Vec<OpRow>> {
        let list: Vec<String> = statuses
            .iter()
            .map(|s| format!("'{}'", s.as_str()))
            .collect();
        let mut stmt = self.conn.prepare(&format!(
            "SELECT {OP_COLUMNS} FROM operations WHERE status IN ({}) ORDER BY priority, id LIMIT ?1",
            list.join(",")
        ))?;
        let rows = stmt.query_map([limit as i64], row_to_op)?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }

    /// Operations per (system, status), from the kept counts (migration 5: enqueue and
    /// transition keep them, a trigger follows deletions).
    pub fn queue_counts(&self) -> Result<Vec<(String, String, i64)>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT system, status, n FROM op_counts WHERE n > 0 ORDER BY system, status",
        )?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }

    /// A system's operations that its workers would run now or are in the middle of
    /// (queued, waiting to retry, running, verifying): how many, and the first `cap` ids.
    /// What is left when a run could not drive the system.
    pub fn waiting_ops(&self, system: &str, cap: usize) -> Result<(u64, Vec<i64>)> {
        const WAITING: &str = "('queued', 'retry_wait', 'running', 'verifying')";
        let count: i64 = self.conn.query_row(
            &format!("SELECT count(*) FROM operations WHERE system = ?1 AND status IN {WAITING}"),
            [system],
            |r| r.get(0),
        )?;
        // And what an applied plan holds for it that is not a row yet.
        let count = count.max(0) as u64 + self.backlog_count_for(system)?;
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT id FROM operations WHERE system = ?1 AND status IN {WAITING} ORDER BY id LIMIT ?2"
        ))?;
        let ids = stmt
            .query_map(params![system, cap as i64], |r| r.get(0))?
            .collect::<rusqlite::Result<Vec<i64>>>()?;
        Ok((count, ids))
    }

    pub fn dependencies_of(&self, id: i64) -> Result<Vec<i64>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT depends_on FROM op_deps WHERE op_id = ?1 ORDER BY depends_on",
        )?;
        let rows = stmt.query_map([id], |r| r.get(0))?;
        Ok(rows.collect::<rusqlite::Result<Vec<i64>>>()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Person;

    #[test]
    fn becoming_a_leaver_cancels_granting_work_in_the_same_transaction() {
        let mut s = Store::open_in_memory().unwrap();
        let mut p = Person::new("E1", "A", "B", "a@x.io");
        s.write(|tx| tx.upsert_person(&p, "t")).unwrap();
        let ids = s
            .write(|tx| {
                let create =
                    tx.enqueue(&op(OperationKind::CreateAccount, "iam", None, &[]), "t")?;
                let add = tx.enqueue(
                    &op(
                        OperationKind::AddMembership,
                        "iam",
                        Some("iam:group:eng"),
                        &[create],
                    ),
                    "t",
                )?;
                let mut pending = op(
                    OperationKind::AddMembership,
                    "iam",
                    Some("iam:group:adm"),
                    &[],
                );
                pending.status = OperationStatus::PendingApproval;
                let approval = tx.enqueue(&pending, "t")?;
                let remove = tx.enqueue(
                    &op(
                        OperationKind::RemoveMembership,
                        "okta",
                        Some("okta:group:x"),
                        &[],
                    ),
                    "t",
                )?;
                Ok([create, add, approval, remove])
            })
            .unwrap();
        // A retry in flight keeps its place until the change.
        s.write(|tx| {
            tx.transition(
                ids[0],
                &[OperationStatus::Queued],
                OperationStatus::RetryWait,
                Change::default(),
                "t",
            )
        })
        .unwrap();
        p.status = crate::model::EmploymentStatus::Terminated;
        let audit_before = s.audit_count().unwrap();
        s.write(|tx| tx.upsert_person(&p, "import")).unwrap();
        let status = |id: i64| -> String {
            s.conn()
                .query_row("SELECT status FROM operations WHERE id = ?1", [id], |r| {
                    r.get(0)
                })
                .unwrap()
        };
        assert_eq!(status(ids[0]), "cancelled");
        assert_eq!(status(ids[1]), "cancelled");
        assert_eq!(status(ids[2]), "cancelled");
        assert_eq!(status(ids[3]), "queued", "a removal is not a grant");
        // One person.updated event and one op.status event per cancelled operation.
        assert_eq!(s.audit_count().unwrap(), audit_before + 1 + 3);
        let why: String = s
            .conn()
            .query_row(
                "SELECT details FROM audit_events WHERE action = 'op.status' ORDER BY seq DESC LIMIT 1",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert!(why.contains("leaver"), "{why}");
    }

    fn op<'a>(
        kind: OperationKind,
        sys: &'a str,
        ent: Option<&'a str>,
        deps: &'a [i64],
    ) -> NewOp<'a> {
        NewOp {
            kind,
            system: sys,
            person_id: "E1",
            entitlement: ent,
            status: OperationStatus::Queued,
            priority: PRIORITY_NORMAL,
            plan_id: None,
            cause: "test",
            depends_on: deps,
            not_before: None,
            counted_as: None,
        }
    }

    /// The counts the triggers keep, and the readiness `transition` keeps, always agree
    /// with counting the rows, through enqueues, successes, failures and retries.
    #[test]
    fn kept_counts_and_readiness_match_the_rows() {
        let mut s = Store::open_in_memory().unwrap();
        s.write(|tx| tx.upsert_person(&Person::new("E1", "A", "B", "a@x.io"), "t"))
            .unwrap();
        let create = s
            .write(|tx| tx.enqueue(&op(OperationKind::CreateAccount, "okta", None, &[]), "t"))
            .unwrap();
        let adds: Vec<i64> = ["eng", "ops", "vpn"]
            .iter()
            .map(|g| {
                let ent = format!("okta:group:{g}");
                s.write(|tx| {
                    tx.enqueue(
                        &op(OperationKind::AddMembership, "okta", Some(&ent), &[create]),
                        "t",
                    )
                })
                .unwrap()
            })
            .collect();
        let other = s
            .write(|tx| tx.enqueue(&op(OperationKind::CreateAccount, "aws", None, &[]), "t"))
            .unwrap();
        let check = |s: &Store| {
            let mut kept = s.queue_counts().unwrap();
            kept.sort();
            let mut counted: Vec<(String, String, i64)> = s
                .conn()
                .prepare("SELECT system, status, count(*) FROM operations GROUP BY system, status")
                .unwrap()
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                .unwrap()
                .map(|r| r.unwrap())
                .collect();
            counted.sort();
            assert_eq!(kept, counted);
            let unmet: Vec<(i64, i64, i64)> = s
                .conn()
                .prepare(
                    "SELECT o.id, o.unmet_deps, (SELECT count(*) FROM op_deps d JOIN operations p
                       ON p.id = d.depends_on WHERE d.op_id = o.id AND p.status != 'succeeded')
                     FROM operations o",
                )
                .unwrap()
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                .unwrap()
                .map(|r| r.unwrap())
                .collect();
            for (id, kept, counted) in unmet {
                assert_eq!(kept, counted, "op #{id}");
            }
        };
        check(&s);
        let now = Utc::now();
        let step = |s: &mut Store, id: i64, from: OperationStatus, to: OperationStatus| {
            assert!(
                s.write(|tx| tx.transition(id, &[from], to, Change::default(), "t"))
                    .unwrap()
            );
        };
        use OperationStatus::*;
        // Only the creates are ready; their memberships wait.
        let ready: Vec<i64> = s
            .ready_ops_for("okta", now, 10)
            .unwrap()
            .iter()
            .map(|o| o.id)
            .collect();
        assert_eq!(ready, vec![create]);
        step(&mut s, create, Queued, Running);
        step(&mut s, other, Queued, Running);
        step(&mut s, other, Running, Failed);
        check(&s);
        step(&mut s, create, Running, Succeeded);
        check(&s);
        let ready: Vec<i64> = s
            .ready_ops_for("okta", now, 10)
            .unwrap()
            .iter()
            .map(|o| o.id)
            .collect();
        assert_eq!(ready, adds);
        step(&mut s, adds[0], Queued, Running);
        step(&mut s, adds[0], Running, RetryWait);
        step(&mut s, other, Failed, Queued);
        check(&s);
        assert_eq!(
            s.ready_ops_for("aws", now, 10)
                .unwrap()
                .iter()
                .map(|o| o.id)
                .collect::<Vec<_>>(),
            vec![other]
        );
    }

    #[test]
    fn dependencies_gate_readiness_and_transitions_are_exclusive() {
        let mut s = Store::open_in_memory().unwrap();
        s.write(|tx| tx.upsert_person(&Person::new("E1", "A", "B", "a@x.io"), "t"))
            .unwrap();
        let create = s
            .write(|tx| tx.enqueue(&op(OperationKind::CreateAccount, "okta", None, &[]), "t"))
            .unwrap();
        let add = s
            .write(|tx| {
                tx.enqueue(
                    &op(
                        OperationKind::AddMembership,
                        "okta",
                        Some("okta:group:eng"),
                        &[create],
                    ),
                    "t",
                )
            })
            .unwrap();
        // Same key again: not enqueued twice.
        assert_eq!(
            s.write(|tx| tx.enqueue(&op(OperationKind::CreateAccount, "okta", None, &[]), "t"))
                .unwrap(),
            create
        );
        let now = Utc::now();
        let ready: Vec<i64> = s.ready_ops(now, 10).unwrap().iter().map(|o| o.id).collect();
        assert_eq!(ready, vec![create]);
        assert!(
            s.write(|tx| tx.transition(
                create,
                &[OperationStatus::Queued],
                OperationStatus::Running,
                Change {
                    count_attempt: true,
                    ..Default::default()
                },
                "t"
            ))
            .unwrap()
        );
        assert!(
            !s.write(|tx| tx.transition(
                create,
                &[OperationStatus::Queued],
                OperationStatus::Running,
                Change::default(),
                "t"
            ))
            .unwrap(),
            "claimed twice"
        );
        assert!(s.ready_ops(now, 10).unwrap().is_empty());
        s.write(|tx| {
            tx.transition(
                create,
                &[OperationStatus::Running],
                OperationStatus::Succeeded,
                Change::default(),
                "t",
            )
        })
        .unwrap();
        let ready: Vec<i64> = s.ready_ops(now, 10).unwrap().iter().map(|o| o.id).collect();
        assert_eq!(ready, vec![add]);
        assert_eq!(s.op(create).unwrap().unwrap().attempts, 1);
        assert_eq!(s.audit_verify().unwrap().map(|_| ()), Ok(()));
    }

    #[test]
    fn dependents_are_found_transitively() {
        let mut s = Store::open_in_memory().unwrap();
        s.write(|tx| tx.upsert_person(&Person::new("E1", "A", "B", "a@x.io"), "t"))
            .unwrap();
        let a = s
            .write(|tx| tx.enqueue(&op(OperationKind::CreateAccount, "okta", None, &[]), "t"))
            .unwrap();
        let b = s
            .write(|tx| tx.enqueue(&op(OperationKind::CreateAccount, "google", None, &[a]), "t"))
            .unwrap();
        let c = s
            .write(|tx| {
                tx.enqueue(
                    &op(
                        OperationKind::AddMembership,
                        "google",
                        Some("google:group:x"),
                        &[b],
                    ),
                    "t",
                )
            })
            .unwrap();
        assert_eq!(s.write(|tx| tx.dependents(a)).unwrap(), vec![b, c]);
    }

    #[test]
    fn retry_wait_is_ready_only_when_due() {
        let mut s = Store::open_in_memory().unwrap();
        s.write(|tx| tx.upsert_person(&Person::new("E1", "A", "B", "a@x.io"), "t"))
            .unwrap();
        let a = s
            .write(|tx| tx.enqueue(&op(OperationKind::CreateAccount, "okta", None, &[]), "t"))
            .unwrap();
        let now = Utc::now();
        let later = now + chrono::Duration::seconds(30);
        let err = ErrorInfo {
            class: "transient".into(),
            status: Some(503),
            ..Default::default()
        };
        s.write(|tx| {
            tx.transition(
                a,
                &[OperationStatus::Queued],
                OperationStatus::RetryWait,
                Change {
                    next_attempt_at: Some(later),
                    error: Some(&err),
                    ..Default::default()
                },
                "t",
            )
        })
        .unwrap();
        assert!(s.ready_ops(now, 10).unwrap().is_empty());
        assert_eq!(s.ready_ops(later, 10).unwrap().len(), 1);
        assert_eq!(s.op(a).unwrap().unwrap().last_error_status, Some(503));
    }
}
