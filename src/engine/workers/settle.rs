//! Settling finished operations: outcomes written in one transaction (success, verify,
//! retry with backoff, failure blocking dependents, cancel), and what they changed.

use super::{Attrs, Engine, Moved, Outcome, RunSummary, info, parse_ts};
use crate::Result;
use crate::adapters::{AdapterError, ErrorClass, RemoteAccount};
use crate::model::{OperationKind, OperationStatus};
use crate::store::access::AccountRow;
use crate::store::queue::{Change, OpRow};
use chrono::Utc;
use std::sync::Arc;
use std::time::Duration;

impl Engine {
    /// Write the outcomes of finished operations, all in one transaction, then tell the
    /// watchers.
    pub(super) fn settle_all(
        &self,
        done: Vec<(Arc<OpRow>, Result<Outcome>)>,
        summary: &mut RunSummary,
    ) -> Result<()> {
        if done.is_empty() {
            return Ok(());
        }
        let mut counts = RunSummary::default();
        let told = self.db(|s| {
            s.write(|tx| {
                let mut told = Vec::with_capacity(done.len());
                for (op, outcome) in done {
                    let (status, message) = self.settle_in(tx, &op, outcome, &mut counts)?;
                    told.push((op, status, message));
                }
                // The batch's successes in one audit event, as their claims were: which
                // operation, of whom, in which system, from which status (running or
                // verifying), and any note.
                let ops: Vec<serde_json::Value> = told
                    .iter()
                    .filter(|(_, st, _)| *st == Some(OperationStatus::Succeeded))
                    .map(|(o, _, note)| {
                        let mut v = serde_json::json!({"op": o.id, "system": o.system,
                                                       "person": o.person_id,
                                                       "from": o.status.as_str()});
                        if let Some(n) = note {
                            v["note"] = serde_json::json!(n);
                        }
                        v
                    })
                    .collect();
                if !ops.is_empty() {
                    tx.audit(crate::store::NewAuditEvent {
                        actor: &self.cfg.actor,
                        action: "op.succeeded",
                        subject: "queue",
                        details: serde_json::json!({"to": "succeeded", "ops": ops}),
                    })?;
                }
                Ok(told)
            })
        })?;
        summary.succeeded += counts.succeeded;
        summary.failed += counts.failed;
        summary.retried += counts.retried;
        summary.blocked += counts.blocked;
        for (op, status, message) in told {
            if let Some(status) = status {
                self.emit(&op, status, message);
            }
        }
        Ok(())
    }

    /// Write one operation's outcome in `tx`. Returns the status to announce, if any.
    fn settle_in(
        &self,
        tx: &mut crate::store::Tx<'_>,
        op: &OpRow,
        outcome: Result<Outcome>,
        summary: &mut RunSummary,
    ) -> Result<(Option<OperationStatus>, Option<String>)> {
        let actor = self.cfg.actor.as_str();
        let from = [OperationStatus::Running, OperationStatus::Verifying];
        let outcome = match outcome {
            Ok(o) => o,
            Err(e) => Outcome::Fail(AdapterError::new(
                ErrorClass::Permanent,
                &op.system,
                e.to_string(),
            )),
        };
        let now = Utc::now();
        Ok(match outcome {
            Outcome::Done {
                write_through,
                account,
                moved,
            } => {
                if op.status != OperationStatus::Verifying {
                    tx.record_attempt(op.id, op.attempts + 1, now, "ok", None)?;
                }
                if let Some((acc, attrs)) = account {
                    remember_in_tx(tx, op, &acc, attrs.as_ref(), actor)?;
                }
                let note = match moved {
                    Some(m) => moved_in_tx(tx, op, m, actor)?,
                    None => None,
                };
                if write_through {
                    effect_in_tx(tx, op, actor)?;
                }
                tx.transition(
                    op.id,
                    &from,
                    OperationStatus::Succeeded,
                    Change {
                        clear_error: true,
                        // One `op.succeeded` event for the batch (settle_all).
                        audited_by_caller: true,
                        ..Default::default()
                    },
                    actor,
                )?;
                summary.succeeded += 1;
                (Some(OperationStatus::Succeeded), note)
            }
            Outcome::Verify => {
                tx.record_attempt(op.id, op.attempts + 1, now, "ok", None)?;
                let until =
                    now + chrono::Duration::from_std(self.cfg.verify_deadline).unwrap_or_default();
                let next =
                    now + chrono::Duration::from_std(self.cfg.verify_poll).unwrap_or_default();
                tx.transition(
                    op.id,
                    &[OperationStatus::Running],
                    OperationStatus::Verifying,
                    Change {
                        verify_until: Some(until),
                        next_attempt_at: Some(next),
                        ..Default::default()
                    },
                    actor,
                )?;
                (Some(OperationStatus::Verifying), None)
            }
            Outcome::LookAgain => {
                let next =
                    now + chrono::Duration::from_std(self.cfg.verify_poll).unwrap_or_default();
                tx.set_next_attempt(op.id, next, actor)?;
                (None, None)
            }
            Outcome::Retry(e) => {
                let first = tx
                    .first_attempt_at(op.id)?
                    .and_then(|t| parse_ts(&t))
                    .unwrap_or(now);
                let elapsed = (now - first).to_std().unwrap_or_default();
                if elapsed >= self.cfg.retry_window {
                    let extra = format!("still failing after {} s of retries", elapsed.as_secs());
                    return self.fail_in(tx, op, e, summary, &extra);
                }
                let exp = self
                    .cfg
                    .retry_base
                    .saturating_mul(1u32 << op.attempts.min(16))
                    .min(self.cfg.retry_cap);
                let jitter = Duration::from_secs_f64(rand::random::<f64>() * exp.as_secs_f64());
                let delay = e.class.retry_after().map_or(jitter, |ra| ra.max(jitter));
                let next = now + chrono::Duration::from_std(delay).unwrap_or_default();
                let err = info(&e);
                tx.record_attempt(op.id, op.attempts + 1, now, "retry", Some(&err))?;
                tx.transition(
                    op.id,
                    &[OperationStatus::Running],
                    OperationStatus::RetryWait,
                    Change {
                        next_attempt_at: Some(next),
                        error: Some(&err),
                        ..Default::default()
                    },
                    actor,
                )?;
                summary.retried += 1;
                (Some(OperationStatus::RetryWait), Some(e.to_string()))
            }
            Outcome::Fail(e) => return self.fail_in(tx, op, e, summary, ""),
            Outcome::Cancel(why) => {
                tx.cancel_with_dependents(
                    op.id,
                    &[OperationStatus::Running],
                    &why,
                    &format!("cancelled with #{}: {why}", op.id),
                    actor,
                )?;
                (Some(OperationStatus::Cancelled), Some(why))
            }
        })
    }

    /// Fail an operation in `tx` and block everything waiting on it, with the reason.
    fn fail_in(
        &self,
        tx: &mut crate::store::Tx<'_>,
        op: &OpRow,
        e: AdapterError,
        summary: &mut RunSummary,
        extra: &str,
    ) -> Result<(Option<OperationStatus>, Option<String>)> {
        let actor = self.cfg.actor.as_str();
        let mut err = info(&e);
        if !extra.is_empty() {
            err.message = format!("{} ({extra})", err.message);
        }
        let reason = format!(
            "waiting on #{} ({} {} for {}), which failed: {}",
            op.id,
            op.kind.as_str(),
            op.system,
            op.person_id,
            err.message
        );
        tx.record_attempt(op.id, op.attempts + 1, Utc::now(), "failed", Some(&err))?;
        tx.transition(
            op.id,
            &[OperationStatus::Running, OperationStatus::Verifying],
            OperationStatus::Failed,
            Change {
                error: Some(&err),
                ..Default::default()
            },
            actor,
        )?;
        for d in tx.dependents(op.id)? {
            if tx.transition(
                d,
                &[
                    OperationStatus::Queued,
                    OperationStatus::RetryWait,
                    OperationStatus::PendingApproval,
                ],
                OperationStatus::Blocked,
                Change {
                    blocked_reason: Some(&reason),
                    ..Default::default()
                },
                actor,
            )? {
                summary.blocked += 1;
            }
        }
        summary.failed += 1;
        Ok((Some(OperationStatus::Failed), Some(err.message)))
    }
}

/// Record the account an operation made or adopted for its person (and the attributes
/// it was written with).
fn remember_in_tx(
    tx: &mut crate::store::Tx<'_>,
    op: &OpRow,
    acc: &RemoteAccount,
    attrs: Option<&Attrs>,
    actor: &str,
) -> Result<()> {
    tx.upsert_account(&account_row(op, acc), actor)?;
    if let Some(a) = attrs {
        tx.set_account_attrs(&op.system, &op.person_id, a)?;
    }
    Ok(())
}

/// Record a mover's update with its success: the login rename first (so the account row
/// and its memberships move with it), then the attributes written. Returns what to say
/// with the success.
fn moved_in_tx(
    tx: &mut crate::store::Tx<'_>,
    op: &OpRow,
    m: Moved,
    actor: &str,
) -> Result<Option<String>> {
    let mut note = m.note;
    if let Some((from, to)) = &m.renamed
        && !tx.rename_login(&op.system, &op.person_id, from, to, actor)?
    {
        // Taken in the store since the worker looked (a race): the target has the new
        // login, the store keeps the old one until an admin settles it.
        note = Some(format!(
            "{} was renamed to {to:?} in {}, but accessdesk could not record it: {to:?} is held by another account in the store; their login stays {from:?} here",
            op.person_id, op.system
        ));
    }
    tx.set_account_attrs(&op.system, &op.person_id, &m.attrs)?;
    Ok(note)
}

pub(super) fn account_row(op: &OpRow, acc: &RemoteAccount) -> AccountRow {
    AccountRow {
        system: op.system.clone(),
        person_id: Some(op.person_id.clone()),
        login: acc.login.clone(),
        external_id: Some(acc.external_id.clone()),
        active: acc.active,
    }
}

/// Write through what a successful operation changed, so the next plan sees it.
pub(super) fn effect_in_tx(tx: &mut crate::store::Tx<'_>, op: &OpRow, actor: &str) -> Result<()> {
    if op.kind.on_account() {
        tx.set_account_inactive_by_external_id(&op.system, &op.person_id)?;
        return Ok(());
    }
    let acct = tx.account_for(&op.system, &op.person_id)?;
    match op.kind {
        OperationKind::AddMembership | OperationKind::RemoveMembership => {
            let login = acct
                .map(|a| a.login)
                .unwrap_or_else(|| op.person_id.clone());
            let ent = op.entitlement.clone().unwrap_or_default();
            let present = op.kind == OperationKind::AddMembership;
            tx.write_through_access(&op.system, &login, Some(&op.person_id), &ent, present)?;
        }
        OperationKind::Deactivate | OperationKind::Reactivate => {
            if let Some(mut a) = acct {
                a.active = op.kind == OperationKind::Reactivate;
                tx.upsert_account(&a, actor)?;
            }
        }
        OperationKind::CreateAccount
        | OperationKind::UpdateAttributes
        | OperationKind::DeactivateOrphan => {}
    }
    Ok(())
}
