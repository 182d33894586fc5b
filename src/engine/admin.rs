//! What an admin can do to operations and approvals. Every action is audited with who and why.

use crate::model::OperationStatus;
use crate::store::queue::{Change, OpRow};
use crate::store::{NewAuditEvent, Store};
use crate::{Error, Result};
use rusqlite::params;
use serde::Serialize;
use serde_json::json;
use std::collections::BTreeMap;

use OperationStatus::*;

/// What an admin does to one operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Run it again (failed, blocked, cancelled or waiting to retry: now).
    Retry,
    /// Give up on it and let what depends on it stay blocked.
    Skip,
    /// Cancel it (and what depends on it).
    Cancel,
}

/// A root cause: operations that failed the same way in the same system.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct RootCause {
    pub system: String,
    pub class: String,
    /// The vendor code, or the message when there is no code.
    pub code_or_message: String,
}

impl RootCause {
    pub fn of(op: &OpRow) -> Option<RootCause> {
        let class = op.last_error_class.clone()?;
        let code_or_message = op
            .last_error_code
            .clone()
            .or_else(|| op.last_error_status.map(|s| format!("HTTP {s}")))
            .unwrap_or_else(|| op.last_error_message.clone().unwrap_or_default());
        Some(RootCause {
            system: op.system.clone(),
            class,
            code_or_message,
        })
    }

    pub fn key(&self) -> String {
        format!("{}/{}/{}", self.system, self.class, self.code_or_message)
    }
}

/// Failed and blocked operations grouped by root cause, with counts.
pub fn failure_groups(store: &Store) -> Result<BTreeMap<RootCause, Vec<OpRow>>> {
    let mut groups: BTreeMap<RootCause, Vec<OpRow>> = BTreeMap::new();
    let failed = store.ops_with_status(&[Failed], 1_000_000)?;
    for op in failed {
        if let Some(rc) = RootCause::of(&op) {
            groups.entry(rc).or_default().push(op);
        }
    }
    Ok(groups)
}

/// Apply an action to one operation. Returns whether it changed anything.
pub fn act(store: &mut Store, id: i64, action: Action, actor: &str, why: &str) -> Result<bool> {
    store.write(|tx| {
        let changed = match action {
            Action::Retry => {
                let ok = tx.transition(
                    id,
                    &[Failed, Blocked, Cancelled, RetryWait],
                    Queued,
                    Change {
                        clear_error: true,
                        why: Some(why),
                        ..Default::default()
                    },
                    actor,
                )?;
                if ok {
                    // What was blocked on it may run again once it succeeds.
                    for d in tx.dependents(id)? {
                        tx.transition(
                            d,
                            &[Blocked],
                            Queued,
                            Change {
                                why: Some("a dependency is being retried"),
                                ..Default::default()
                            },
                            actor,
                        )?;
                    }
                }
                ok
            }
            Action::Skip => tx.transition(
                id,
                &[
                    Failed,
                    Blocked,
                    Queued,
                    Scheduled,
                    RetryWait,
                    PendingApproval,
                ],
                Cancelled,
                Change {
                    why: Some(&format!("skipped: {why}")),
                    ..Default::default()
                },
                actor,
            )?,
            Action::Cancel => tx.cancel_with_dependents(
                id,
                &[
                    Failed,
                    Blocked,
                    Queued,
                    Scheduled,
                    RetryWait,
                    PendingApproval,
                ],
                &format!("cancelled: {why}"),
                &format!("cancelled with #{id}"),
                actor,
            )?,
        };
        Ok(changed)
    })
}

/// Apply an action to every failed operation sharing a root cause (by its key).
pub fn act_on_group(
    store: &mut Store,
    key: &str,
    action: Action,
    actor: &str,
    why: &str,
) -> Result<usize> {
    let groups = failure_groups(store)?;
    let Some((_, ops)) = groups.into_iter().find(|(rc, _)| rc.key() == key) else {
        return Err(Error::usage(
            format!("no failure group {key:?}"),
            "see `accessdesk queue failures`",
        ));
    };
    let mut n = 0;
    for op in ops {
        if act(store, op.id, action, actor, why)? {
            n += 1;
        }
    }
    Ok(n)
}

#[derive(Debug, Clone, Serialize)]
pub struct PendingApproval {
    pub id: i64,
    pub op_id: Option<i64>,
    pub person_id: String,
    pub entitlement: String,
    pub rule: String,
    pub requested_at: String,
}

pub fn pending_approvals(store: &Store) -> Result<Vec<PendingApproval>> {
    approvals_where(store, "status = 'pending' ORDER BY id")
}

/// Rejected grants that still stick (the grant rests on the same inputs), newest first.
pub fn rejected_approvals(store: &Store) -> Result<Vec<PendingApproval>> {
    approvals_where(
        store,
        "status = 'rejected' AND inputs IS NOT NULL ORDER BY id DESC",
    )
}

/// Approvals matching a fixed condition (`filter` is ours, never user input).
fn approvals_where(store: &Store, filter: &str) -> Result<Vec<PendingApproval>> {
    let mut stmt = store.conn().prepare(&format!(
        "SELECT id, op_id, person_id, entitlement, rule, requested_at FROM approvals WHERE {filter}"
    ))?;
    let rows = stmt.query_map([], |r| {
        Ok(PendingApproval {
            id: r.get(0)?,
            op_id: r.get(1)?,
            person_id: r.get(2)?,
            entitlement: r.get(3)?,
            rule: r.get(4)?,
            requested_at: r.get(5)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
}

/// Let a rejected grant be requested again at the next plan. Audited with the reason.
pub fn reopen(store: &mut Store, approval_id: i64, actor: &str, reason: &str) -> Result<()> {
    if reason.trim().is_empty() {
        return Err(Error::usage(
            "a reason is required",
            "pass --reason \"...\"",
        ));
    }
    store.write(|tx| {
        let n = tx.conn().execute(
            "UPDATE approvals SET inputs = NULL WHERE id = ?1 AND status = 'rejected' AND inputs IS NOT NULL",
            [approval_id],
        )?;
        if n == 0 {
            return Err(Error::usage(
                format!("no rejected approval #{approval_id} to reopen"),
                "see `accessdesk approvals list --rejected`",
            ));
        }
        tx.audit(NewAuditEvent {
            actor,
            action: "approval.reopened",
            subject: &approval_id.to_string(),
            details: json!({"approval": approval_id, "reason": reason}),
        })?;
        Ok(())
    })
}

/// Approve or reject a pending grant. A reason is required.
pub fn decide(
    store: &mut Store,
    approval_id: i64,
    approve: bool,
    actor: &str,
    reason: &str,
) -> Result<()> {
    if reason.trim().is_empty() {
        return Err(Error::usage(
            "a reason is required",
            "pass --reason \"...\"",
        ));
    }
    let pending = pending_approvals(store)?;
    let Some(p) = pending.into_iter().find(|p| p.id == approval_id) else {
        return Err(Error::usage(
            format!("no pending approval #{approval_id}"),
            "see `accessdesk approvals list`",
        ));
    };
    store.write(|tx| {
        let status = if approve { "approved" } else { "rejected" };
        // A rejection keeps what the grant rested on, so the planner does not ask again
        // until the rule or an attribute it reads changes.
        tx.conn().execute(
            "UPDATE approvals SET status = ?2, decided_at = ?3, decided_by = ?4, reason = ?5,
               inputs = CASE ?2 WHEN 'rejected' THEN (SELECT inputs FROM intended_grants g
                 WHERE g.person_id = approvals.person_id AND g.entitlement = approvals.entitlement) END
             WHERE id = ?1",
            params![approval_id, status, crate::store::queue::ts(tx.now), actor, reason],
        )?;
        tx.audit(NewAuditEvent {
            actor,
            action: if approve { "approval.approved" } else { "approval.rejected" },
            subject: &p.person_id,
            details: json!({"approval": approval_id, "op": p.op_id, "entitlement": p.entitlement, "rule": p.rule, "reason": reason}),
        })?;
        if let Some(op) = p.op_id {
            let to = if approve { Queued } else { Cancelled };
            tx.transition(op, &[PendingApproval], to, Change { why: Some(reason), ..Default::default() }, actor)?;
        }
        Ok(())
    })
}
