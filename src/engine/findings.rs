//! Remediating findings: enforce (queue the operations that remove the drift, through
//! the planner's rules and the queue's guards), accept as an exception (reason, approver,
//! expiry; the drift comes back when it expires), or ignore once. Every disposition is an
//! audit event; an enforced finding keeps the ids of the operations it queued, whose
//! attempts hold the vendor's answers (the evidence report lists them).
//!
//! What enforcing queues, per class:
//! - `missing`: the planner's grant for that person and entitlement (with the account's
//!   creation when there is no account); a grant that needs approval waits for one.
//! - `excess`: the planner's removal. Only on an account proven to be the person's.
//! - `leaver_with_access`: the planner's deactivation and, where `on_leave` says so, the
//!   removals.
//! - `attribute_drift`: an attribute update from HR.
//! - `orphan`: the account's deactivation (`deactivate_orphan`, by its id in the target;
//!   never a deletion, so it can be restored). Before it runs the worker reads the
//!   account again and leaves it alone if it now proves to be somebody's. An orphan that
//!   is really someone's is linked instead (`accessdesk account link`).
//! - `ambiguous`, `unmanaged`: refused with what to do instead. An ambiguous account must
//!   be linked first; unmanaged access is reported and never touched.

use super::apply::{ApplyReport, Origin, enqueue_planned};
use super::plan::{PlannedOp, Scope, Settings, compute};
use super::reconcile::Class;
use crate::config::Catalog;
use crate::model::{OperationKind, OperationStatus};
use crate::store::Store;
use crate::store::queue::NewOp;
use crate::store::reconcile::FindingRow;
use crate::{Error, Result};
use serde::Serialize;

/// What happened to one finding.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    pub finding: i64,
    pub class: String,
    pub status: String,
    /// The operations it queued (enforce).
    pub ops: Vec<i64>,
    /// Why nothing was queued, when nothing was.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// Why a finding of this class cannot be enforced, if it cannot.
pub fn not_enforceable(class: &str) -> Option<&'static str> {
    match Class::parse(class)? {
        Class::Ambiguous => Some(
            "more than one person matches this account: link it to the right one (`accessdesk account link`) and reconcile again",
        ),
        Class::Unmanaged => Some(
            "the catalogue does not list this entitlement, so accessdesk never changes it: add it to systems.toml to manage it, or accept it",
        ),
        _ => None,
    }
}

fn wanted(f: &FindingRow, op: &PlannedOp) -> bool {
    let (Some(person), true) = (f.person.as_deref(), *op.system == f.system) else {
        return false;
    };
    if &*op.person_id != person {
        return false;
    }
    let ent = op.entitlement.as_deref();
    match Class::parse(&f.class) {
        Some(Class::Missing) => match f.entitlement.as_deref() {
            Some(e) => {
                (op.kind == OperationKind::AddMembership && ent == Some(e))
                    || matches!(
                        op.kind,
                        OperationKind::CreateAccount | OperationKind::Reactivate
                    )
            }
            None => matches!(
                op.kind,
                OperationKind::CreateAccount
                    | OperationKind::Reactivate
                    | OperationKind::AddMembership
            ),
        },
        Some(Class::Excess) => {
            op.kind == OperationKind::RemoveMembership && ent == f.entitlement.as_deref()
        }
        Some(Class::LeaverWithAccess) => matches!(
            op.kind,
            OperationKind::Deactivate | OperationKind::RemoveMembership
        ),
        _ => false,
    }
}

/// Enforce findings: queue their operations (one transaction per finding, each audited
/// with the finding's disposition). Findings that cannot be enforced are returned with
/// the reason and left open.
pub fn enforce(
    store: &mut Store,
    catalog: &Catalog,
    findings: &[FindingRow],
    actor: &str,
) -> Result<Vec<Outcome>> {
    let settings = Settings::from_catalog(catalog);
    let mut out = Vec::new();
    for f in findings {
        if f.status != "open" {
            out.push(Outcome {
                finding: f.id,
                class: f.class.clone(),
                status: f.status.clone(),
                ops: Vec::new(),
                note: Some(format!("already {}", f.status)),
            });
            continue;
        }
        if let Some(why) = not_enforceable(&f.class) {
            out.push(Outcome {
                finding: f.id,
                class: f.class.clone(),
                status: f.status.clone(),
                ops: Vec::new(),
                note: Some(why.to_string()),
            });
            continue;
        }
        let cause = format!("finding:{}", f.id);
        // Attribute drift and orphans are one operation each, on the finding's account;
        // the rest are what the planner proposes for the person.
        let direct = if f.class == Class::AttributeDrift.as_str() {
            let person = f
                .person
                .as_deref()
                .ok_or_else(|| Error::Failed(format!("finding {} names no person", f.id)))?;
            Some((OperationKind::UpdateAttributes, person))
        } else if f.class == Class::Orphan.as_str() {
            let account = f
                .account_id
                .as_deref()
                .ok_or_else(|| Error::Failed(format!("finding {} names no account id", f.id)))?;
            Some((OperationKind::DeactivateOrphan, account))
        } else {
            None
        };
        let ops: Vec<i64> = if let Some((kind, subject)) = direct {
            store.write(|tx| {
                let id = tx.enqueue(
                    &NewOp {
                        kind,
                        system: &f.system,
                        person_id: subject,
                        entitlement: None,
                        status: OperationStatus::Queued,
                        priority: crate::store::queue::PRIORITY_NORMAL,
                        plan_id: None,
                        cause: &cause,
                        depends_on: &[],
                        not_before: None,
                        counted_as: None,
                    },
                    actor,
                )?;
                tx.decide_finding(f, "enforced", None, None, &[id], actor)?;
                Ok(vec![id])
            })?
        } else {
            let scope = Scope {
                system: Some(f.system.clone()),
                person: f.person.clone(),
            };
            let (planned, _, _) = compute(store, &scope, &settings)?;
            let picked: Vec<&PlannedOp> = planned.iter().filter(|o| wanted(f, o)).collect();
            if picked.is_empty() {
                out.push(Outcome {
                    finding: f.id,
                    class: f.class.clone(),
                    status: f.status.clone(),
                    ops: Vec::new(),
                    note: Some(
                        "nothing to queue: the planner proposes no operation for it (already queued, no longer drift, or the account is not proven to be this person's)"
                            .into(),
                    ),
                });
                continue;
            }
            store.write(|tx| {
                let mut report = ApplyReport::default();
                let ids = enqueue_planned(
                    tx,
                    catalog,
                    &picked,
                    Origin {
                        plan_id: None,
                        cause: &cause,
                        counted_as: None,
                    },
                    &mut report,
                    |_, _| {},
                )?;
                tx.decide_finding(f, "enforced", None, None, &ids, actor)?;
                Ok(ids)
            })?
        };
        out.push(Outcome {
            finding: f.id,
            class: f.class.clone(),
            status: "enforced".into(),
            ops,
            note: None,
        });
    }
    Ok(out)
}

/// Accept findings as exceptions until `until` (RFC 3339 or YYYY-MM-DD), with a reason.
pub fn accept(
    store: &mut Store,
    findings: &[FindingRow],
    reason: &str,
    until: &str,
    actor: &str,
) -> Result<Vec<Outcome>> {
    if reason.trim().is_empty() {
        return Err(Error::usage(
            "accepting a finding needs a reason",
            "add --reason \"why this access is allowed\"",
        ));
    }
    let until = parse_until(until)?;
    if until <= chrono::Utc::now() {
        return Err(Error::usage(
            format!("--until {until} is in the past"),
            "give a future date, e.g. --until 2027-03-31",
        ));
    }
    let until = crate::store::queue::ts(until);
    store.write(|tx| {
        let mut out = Vec::new();
        for f in findings {
            tx.decide_finding(f, "accepted", Some(reason), Some(&until), &[], actor)?;
            out.push(Outcome {
                finding: f.id,
                class: f.class.clone(),
                status: "accepted".into(),
                ops: Vec::new(),
                note: None,
            });
        }
        Ok(out)
    })
}

/// Ignore findings once: this run's finding is closed; a later run reports the drift
/// again if it is still there.
pub fn ignore(
    store: &mut Store,
    findings: &[FindingRow],
    reason: Option<&str>,
    actor: &str,
) -> Result<Vec<Outcome>> {
    store.write(|tx| {
        let mut out = Vec::new();
        for f in findings {
            tx.decide_finding(f, "ignored", reason, None, &[], actor)?;
            out.push(Outcome {
                finding: f.id,
                class: f.class.clone(),
                status: "ignored".into(),
                ops: Vec::new(),
                note: None,
            });
        }
        Ok(out)
    })
}

/// `2027-03-31` (end of that day, UTC) or a full RFC 3339 time.
pub fn parse_until(s: &str) -> Result<chrono::DateTime<chrono::Utc>> {
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
        return Ok(t.with_timezone(&chrono::Utc));
    }
    if let Ok(d) = chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d")
        && let Some(t) = d.and_hms_opt(23, 59, 59)
    {
        return Ok(t.and_utc());
    }
    Err(Error::usage(
        format!("--until {s:?} is not a date"),
        "write YYYY-MM-DD or an RFC 3339 time",
    ))
}
