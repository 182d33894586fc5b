//! Plans as stored artifacts, the mass-change guard, and applying a plan to the queue.
//!
//! `accessdesk plan` computes and stores a plan with an id; `accessdesk apply ID` applies
//! exactly that plan. Applying first recomputes the diff for the same scope: if it is not
//! the same set of operations, the world changed since the plan was made and the apply is
//! refused. A plan the guard held is applied only with an explicit approval and reason.

use super::plan::{PlannedOp, Scope, Settings, compute};
use crate::config::Catalog;
use crate::config::systems::GuardThresholds;
use crate::model::{OperationKind, OperationStatus, RiskLevel};
use crate::store::backlog::BacklogRow;
use crate::store::queue::{NewOp, PRIORITY_NORMAL, plan_cause, priority_of};
use crate::store::{NewAuditEvent, Store};
use crate::{Error, Result};
use rusqlite::{OptionalExtension, params};
use serde::Serialize;
use serde_json::json;
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

/// A stored plan.
#[derive(Debug, Clone, Serialize)]
pub struct StoredPlan {
    pub id: String,
    pub created_at: String,
    pub scope: Scope,
    pub status: String,
    /// Why the mass-change guard held it, in plain words.
    pub held_reason: Option<String>,
    /// The audit chain's head right after the plan was stored.
    #[serde(skip)]
    pub audit_seq: Option<i64>,
    pub ops: Vec<PlannedOp>,
}

impl StoredPlan {
    /// Counts per (system, operation kind).
    pub fn counts(&self) -> BTreeMap<(String, String), usize> {
        let mut m = BTreeMap::new();
        for o in &self.ops {
            *m.entry((o.system.to_string(), o.kind.as_str().to_string()))
                .or_default() += 1;
        }
        m
    }
}

/// Check a set of planned operations against the guard's thresholds. Returns the reasons
/// it must be held, one per system and operation type that crossed its threshold.
pub fn guard(
    ops: &[PlannedOp],
    account_counts: &HashMap<Arc<str>, usize>,
    catalog: &Catalog,
    defaults: &GuardThresholds,
) -> Vec<String> {
    // Per system and kind: the accounts affected (people), and the operations.
    let mut per: BTreeMap<(&str, OperationKind), (HashSet<&str>, usize)> = BTreeMap::new();
    let mut privileged: BTreeMap<&str, usize> = BTreeMap::new();
    for o in ops {
        if matches!(
            o.kind,
            OperationKind::Deactivate | OperationKind::RemoveMembership
        ) {
            let e = per.entry((&o.system, o.kind)).or_default();
            e.0.insert(&o.person_id);
            e.1 += 1;
        }
        if o.kind == OperationKind::RemoveMembership
            && let Some(e) = o
                .entitlement
                .as_deref()
                .and_then(|e| e.parse::<crate::model::EntitlementRef>().ok())
            && catalog
                .entitlement(&e.system, e.kind, &e.name)
                .is_some_and(|c| c.risk >= RiskLevel::High)
        {
            *privileged.entry(&o.system).or_default() += 1;
        }
    }
    let mut reasons = Vec::new();
    for ((system, kind), (people, n_ops)) in per {
        let n = people.len();
        let t = catalog
            .systems
            .get(system)
            .and_then(|s| s.guard)
            .unwrap_or(*defaults);
        let accounts = account_counts.get(system).copied().unwrap_or(0);
        let (pct, abs) = match kind {
            OperationKind::Deactivate => (t.max_deactivate_percent, t.max_deactivate),
            _ => (t.max_remove_percent, t.max_remove),
        };
        let limit = abs.unwrap_or_else(|| {
            ((pct / 100.0) * accounts as f64)
                .floor()
                .max(t.min_ops as f64) as usize
        });
        if n > limit {
            let share = if accounts > 0 {
                format!(
                    " ({:.0}% of its {accounts} accounts)",
                    100.0 * n as f64 / accounts as f64
                )
            } else {
                String::new()
            };
            let what = if kind == OperationKind::Deactivate {
                format!("deactivate {n} accounts{share}")
            } else {
                format!("remove {n_ops} memberships from {n} accounts{share}")
            };
            reasons.push(format!(
                "{system}: the plan would {what}; the limit is {limit} accounts{}",
                if abs.is_some() {
                    " (absolute)".to_string()
                } else {
                    format!(" ({pct}% of accounts, at least {})", t.min_ops)
                }
            ));
        }
    }
    for (system, n) in privileged {
        let t = catalog
            .systems
            .get(system)
            .and_then(|s| s.guard)
            .unwrap_or(*defaults);
        if n > t.max_privileged_remove {
            reasons.push(format!(
                "{system}: the plan would remove {n} high-risk or privileged memberships; the limit is {}",
                t.max_privileged_remove
            ));
        }
    }
    reasons
}

fn new_plan_id() -> String {
    let t = chrono::Utc::now().format("%Y%m%d-%H%M%S");
    let r: u32 = rand::random::<u32>() & 0xffff;
    format!("p-{t}-{r:04x}")
}

/// Compute, guard and store a plan.
pub fn make_plan(
    store: &mut Store,
    catalog: &Catalog,
    defaults: &GuardThresholds,
    scope: &Scope,
    actor: &str,
) -> Result<StoredPlan> {
    let (ops, inputs, _timing) = compute(store, scope, &Settings::from_catalog(catalog))?;
    let reasons = guard(&ops, &inputs.account_counts(), catalog, defaults);
    let held = (!reasons.is_empty()).then(|| reasons.join("; "));
    let id = new_plan_id();
    let created_at = crate::store::queue::ts(chrono::Utc::now());
    let scope_json = serde_json::to_string(scope).unwrap_or_else(|_| "{}".into());
    let status = if held.is_some() { "held" } else { "planned" };
    let ops_sha256 = plan_digest(&ops);
    let waiting = ops
        .iter()
        .filter(|o| o.requires_approval || o.not_before.is_some())
        .count();
    store.write(|tx| {
        let summary = json!({"operations": ops.len(), "ops_sha256": ops_sha256,
                             "approval_or_scheduled": waiting})
        .to_string();
        tx.conn().execute(
            "INSERT INTO plans (id, created_at, scope, status, held_reason, summary) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![id, created_at, scope_json, status, held, summary],
        )?;
        {
            let mut stmt = tx.conn().prepare_cached(
                "INSERT INTO plan_ops (plan_id, seq, kind, system, person_id, entitlement, requires_approval, not_before, detail) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            )?;
            for (i, o) in ops.iter().enumerate() {
                stmt.execute(params![id, i as i64, o.kind.as_str(), &*o.system, &*o.person_id, o.entitlement.as_deref(), o.requires_approval, o.not_before.map(crate::store::queue::ts), o.detail.as_deref()])?;
            }
        }
        let seq = tx.audit(NewAuditEvent {
            actor,
            action: if held.is_some() { "plan.held" } else { "plan.created" },
            subject: &id,
            details: json!({"operations": ops.len(), "scope": scope, "held_reason": held,
                            "ops_sha256": ops_sha256,
                            "digest_of": "each planned operation as \"seq|kind|system|person|entitlement\\n\", in seq order"}),
        })?;
        tx.conn()
            .execute("UPDATE plans SET audit_seq = ?2 WHERE id = ?1", params![id, seq])?;
        Ok(())
    })?;
    let audit_seq = Some(store.audit_head_seq()?);
    Ok(StoredPlan {
        id,
        created_at,
        scope: scope.clone(),
        status: status.into(),
        held_reason: held,
        audit_seq,
        ops,
    })
}

pub fn load_plan(store: &Store, id: &str) -> Result<StoredPlan> {
    let head = plan_head(store, id)?;
    let mut ops = Vec::new();
    // A plan for a whole company repeats a few systems and entitlements and each person
    // several times: share one copy of each string.
    let mut strings = Interner::default();
    store.for_each_plan_row(id, |r| {
        ops.extend(planned(r, &mut strings));
    })?;
    Ok(StoredPlan {
        id: id.to_string(),
        created_at: head.created_at,
        scope: head.scope,
        status: head.status,
        held_reason: head.held_reason,
        audit_seq: head.audit_seq,
        ops,
    })
}

/// One shared copy of each string.
#[derive(Default)]
struct Interner(HashSet<Arc<str>>);

impl Interner {
    fn get(&mut self, v: String) -> Arc<str> {
        match self.0.get(v.as_str()) {
            Some(a) => a.clone(),
            None => {
                let a: Arc<str> = Arc::from(v);
                self.0.insert(a.clone());
                a
            }
        }
    }
}

/// A stored planned operation; None if its kind is not one this build knows.
fn planned(r: BacklogRow, strings: &mut Interner) -> Option<PlannedOp> {
    Some(PlannedOp {
        kind: r.kind.parse().ok()?,
        system: strings.get(r.system),
        person_id: strings.get(r.person_id),
        entitlement: r.entitlement.map(|e| strings.get(e)),
        requires_approval: r.requires_approval,
        not_before: r
            .not_before
            .and_then(|t| chrono::DateTime::parse_from_rfc3339(&t).ok())
            .map(|t| t.with_timezone(&chrono::Utc)),
        detail: r.detail.map(Arc::from),
    })
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct ApplyReport {
    pub plan: String,
    pub queued: usize,
    pub pending_approval: usize,
}

type OpKey = (
    OperationKind,
    Arc<str>,
    Arc<str>,
    Option<Arc<str>>,
    Option<chrono::DateTime<chrono::Utc>>,
);

/// The operations' identities, sorted (a plan of 700,000 compares in a few tens of MB).
fn sorted_keys(ops: &[PlannedOp]) -> Vec<OpKey> {
    let mut k: Vec<OpKey> = ops
        .iter()
        .map(|o| {
            (
                o.kind,
                o.system.clone(),
                o.person_id.clone(),
                o.entitlement.clone(),
                o.not_before,
            )
        })
        .collect();
    k.sort_unstable();
    k.dedup();
    k
}

/// How many keys are only in `was` (no longer needed) and only in `is` (newly needed).
fn differences(was: &[OpKey], is: &[OpKey]) -> (usize, usize) {
    let (mut i, mut j, mut gone, mut new) = (0, 0, 0, 0);
    while i < was.len() && j < is.len() {
        match was[i].cmp(&is[j]) {
            std::cmp::Ordering::Less => {
                gone += 1;
                i += 1;
            }
            std::cmp::Ordering::Greater => {
                new += 1;
                j += 1;
            }
            std::cmp::Ordering::Equal => {
                i += 1;
                j += 1;
            }
        }
    }
    (gone + was.len() - i, new + is.len() - j)
}

/// How many operations applying a plan makes queue rows for at once (whole people); the
/// rest wait in the plan's backlog until the workers reach them (store/backlog.rs).
pub const APPLY_ROWS: usize = 20_000;

/// A stored plan without its operations (what applying reads before deciding).
struct PlanHead {
    created_at: String,
    scope: Scope,
    status: String,
    held_reason: Option<String>,
    audit_seq: Option<i64>,
    summary: serde_json::Value,
}

fn plan_head(store: &Store, id: &str) -> Result<PlanHead> {
    store
        .conn()
        .query_row(
            "SELECT created_at, scope, status, held_reason, audit_seq, summary FROM plans WHERE id = ?1",
            [id],
            |r| {
                Ok(PlanHead {
                    created_at: r.get(0)?,
                    scope: serde_json::from_str(&r.get::<_, String>(1)?).unwrap_or_default(),
                    status: r.get(2)?,
                    held_reason: r.get(3)?,
                    audit_seq: r.get(4)?,
                    summary: serde_json::from_str(&r.get::<_, String>(5)?).unwrap_or_default(),
                })
            },
        )
        .optional()?
        .ok_or_else(|| {
            Error::usage(
                format!("no plan {id:?}"),
                "run `accessdesk plan` to make one",
            )
        })
}

/// Apply exactly the stored plan. `mass_change_approval` is (who, why) for a held plan.
///
/// The world must not have changed since the plan was made. When nothing at all was
/// written since (the audit chain's head is where the plan left it) that is known without
/// recomputing; otherwise the diff is recomputed and compared.
///
/// Applying takes time in [`APPLY_ROWS`], not in the plan's size. In one transaction it
/// marks the plan applied, makes queue rows for every person with an operation that waits
/// for an approver or a date (so approvers see it at once), puts the rest in the plan's
/// backlog (counted as queued), and makes rows for the first people of that. The workers
/// make the others as they reach them ([`materialise`]). One `plan.applied` event carries
/// the plan's digest (made when it was stored), the rows made now with their id range and
/// a digest of them, and how many wait in the backlog; each later batch of rows has its
/// own `plan.materialised` event.
pub fn apply_plan(
    store: &mut Store,
    catalog: &Catalog,
    id: &str,
    actor: &str,
    mass_change_approval: Option<&str>,
) -> Result<ApplyReport> {
    apply_plan_with(store, catalog, id, actor, mass_change_approval, APPLY_ROWS)
}

/// [`apply_plan`], making rows now for about `rows_now` operations (whole people; none
/// when 0) besides those waiting for an approver or a date.
pub fn apply_plan_with(
    store: &mut Store,
    catalog: &Catalog,
    id: &str,
    actor: &str,
    mass_change_approval: Option<&str>,
    rows_now: usize,
) -> Result<ApplyReport> {
    let head = plan_head(store, id)?;
    let already = || {
        Error::usage(
            format!("plan {id} was already applied"),
            "run `accessdesk plan` for a new one",
        )
    };
    if head.status == "applied" {
        return Err(already());
    }
    if let Some(reason) = &head.held_reason {
        match mass_change_approval {
            Some(why) if !why.trim().is_empty() => {}
            _ => {
                return Err(Error::Failed(format!(
                    "plan {id} is held by the mass-change guard: {reason}. Review it, then apply with --approve-mass-change --reason \"...\""
                )));
            }
        }
    }
    let untouched = head.audit_seq.is_some() && head.audit_seq == Some(store.audit_head_seq()?);
    let mut loaded = None;
    if !untouched {
        let plan = loaded.insert(load_plan(store, id)?);
        let (now_ops, _, _) = compute(store, &head.scope, &Settings::from_catalog(catalog))?;
        let is = sorted_keys(&now_ops);
        drop(now_ops);
        let (gone, new) = differences(&sorted_keys(&plan.ops), &is);
        if gone + new > 0 {
            store.write(|tx| {
                tx.conn()
                    .execute("UPDATE plans SET status = 'refused' WHERE id = ?1", [id])?;
                tx.audit(NewAuditEvent {
                    actor,
                    action: "plan.refused",
                    subject: id,
                    details: json!({"no_longer_needed": gone, "newly_needed": new}),
                })
            })?;
            return Err(Error::Failed(format!(
                "the world changed since plan {id} was made: {gone} of its operations are no longer needed and {new} new ones are; run `accessdesk plan` again"
            )));
        }
    }
    // Plans stored before their digest was kept get it now.
    let plan_sha = match (head.summary["ops_sha256"].as_str(), loaded) {
        (Some(s), _) => s.to_string(),
        (None, Some(plan)) => plan_digest(&plan.ops),
        (None, None) => plan_digest(&load_plan(store, id)?.ops),
    };
    let mut report = ApplyReport {
        plan: id.to_string(),
        ..Default::default()
    };
    store.write(|tx| {
        if let (Some(reason), Some(why)) = (&head.held_reason, mass_change_approval) {
            tx.audit(NewAuditEvent { actor, action: "plan.mass_change_approved", subject: id, details: json!({"held_reason": reason, "why": why}) })?;
        }
        // Marking it applied first makes a second apply racing this one fail.
        if tx.conn().execute(
            "UPDATE plans SET status = 'applied' WHERE id = ?1 AND status IN ('planned', 'held')",
            [id],
        )? == 0
        {
            return Err(already());
        }
        let mut rows = RowsMade::default();
        // People with an operation for an approver or a date: all their rows now.
        let waiting = head.summary["approval_or_scheduled"].as_u64() != Some(0);
        if waiting {
            let people: Vec<String> = {
                let mut stmt = tx.conn().prepare(
                    "SELECT DISTINCT person_id FROM plan_ops WHERE plan_id = ?1
                     AND (requires_approval OR not_before IS NOT NULL)",
                )?;
                let r = stmt.query_map([id], |r| r.get(0))?;
                r.collect::<rusqlite::Result<_>>()?
            };
            let mut taken = Vec::new();
            for p in &people {
                taken.extend(tx.plan_take_person(id, p)?);
            }
            rows.make(tx, catalog, taken, None, &mut report)?;
        }
        let deferred = tx.backlog_open(id)?;
        // Then the first people of the rest (all of a small plan).
        let mut left = deferred;
        if rows_now > 0
            && let Some(first) = tx.backlog_next(Some(id), rows_now)?
        {
            left -= first.len() as u64;
            rows.make(tx, catalog, first, Some(OperationStatus::Queued), &mut report)?;
        }
        report.queued += left as usize;
        tx.audit(NewAuditEvent {
            actor,
            action: "plan.applied",
            subject: id,
            details: json!({"queued": report.queued, "pending_approval": report.pending_approval,
                            "ops_sha256": plan_sha,
                            "digest_of": "each planned operation as \"seq|kind|system|person|entitlement\\n\", in seq order",
                            "rows_now": rows.n, "first_op": rows.first, "last_op": rows.last,
                            "rows_sha256": rows.hex(),
                            "rows_digest_of": "each new operation as \"id|kind|system|person|entitlement\\n\", in id order",
                            "in_backlog": left}),
        })?;
        Ok(())
    })?;
    Ok(report)
}

/// Queue rows made from planned operations, and a digest of them for the audit log.
#[derive(Default)]
struct RowsMade {
    sha: Sha256,
    n: usize,
    first: Option<i64>,
    last: Option<i64>,
}

impl RowsMade {
    /// Make `rows` (whole people, of one plan) queue rows. `counted_as`: already counted
    /// in the queue's counts under this status (the backlog), None to count them now.
    fn make(
        &mut self,
        tx: &mut crate::store::Tx<'_>,
        catalog: &Catalog,
        rows: Vec<BacklogRow>,
        counted_as: Option<OperationStatus>,
        report: &mut ApplyReport,
    ) -> Result<()> {
        let Some(plan) = rows.first().map(|r| r.plan_id.clone()) else {
            return Ok(());
        };
        let mut strings = Interner::default();
        let ops: Vec<PlannedOp> = rows
            .into_iter()
            .filter_map(|r| planned(r, &mut strings))
            .collect();
        let refs: Vec<&PlannedOp> = ops.iter().collect();
        let cause = plan_cause(&plan);
        enqueue_planned(
            tx,
            catalog,
            &refs,
            Origin {
                plan_id: Some(&plan),
                cause: &cause,
                counted_as,
            },
            report,
            |op_id, op| {
                self.sha.update(digest_line(
                    op_id,
                    op.kind,
                    op.system,
                    op.person_id,
                    op.entitlement,
                ));
                self.n += 1;
                self.first = Some(self.first.map_or(op_id, |f| f.min(op_id)));
                self.last = Some(self.last.map_or(op_id, |l| l.max(op_id)));
            },
        )?;
        Ok(())
    }

    fn hex(&self) -> String {
        hex::encode(self.sha.clone().finalize())
    }
}

/// Make queue rows for the backlog's next people: at least `min_ops` operations (whole
/// people) of the oldest applied plan that has any left, audited as one
/// `plan.materialised` event. Returns how many rows; 0 when the backlog is empty. The
/// scheduler calls it as its systems run short of ready work.
pub fn materialise(
    tx: &mut crate::store::Tx<'_>,
    catalog: &Catalog,
    min_ops: usize,
    actor: &str,
) -> Result<usize> {
    let Some(rows) = tx.backlog_next(None, min_ops)? else {
        return Ok(0);
    };
    let (Some(first), Some(last)) = (rows.first(), rows.last()) else {
        return Ok(0);
    };
    let (plan, people) = (
        first.plan_id.clone(),
        [first.person_id.clone(), last.person_id.clone()],
    );
    let n = rows.len();
    let mut made = RowsMade::default();
    made.make(
        tx,
        catalog,
        rows,
        Some(OperationStatus::Queued),
        &mut ApplyReport::default(),
    )?;
    tx.audit(NewAuditEvent {
        actor,
        action: "plan.materialised",
        subject: &plan,
        details: json!({"rows": made.n, "first_op": made.first, "last_op": made.last,
                        "people": people, "rows_sha256": made.hex(),
                        "rows_digest_of": "each new operation as \"id|kind|system|person|entitlement\\n\", in id order"}),
    })?;
    Ok(n)
}

/// Make every backlog operation a queue row (benchmarks that time the workers alone).
pub fn materialise_all(store: &mut Store, catalog: &Catalog, actor: &str) -> Result<usize> {
    let mut total = 0;
    loop {
        let n = store.write(|tx| materialise(tx, catalog, APPLY_ROWS, actor))?;
        if n == 0 {
            return Ok(total);
        }
        total += n;
    }
}

/// A plan's digest: SHA-256 over each operation as "seq|kind|system|person|entitlement\n".
fn plan_digest(ops: &[PlannedOp]) -> String {
    let mut sha = Sha256::new();
    for (i, o) in ops.iter().enumerate() {
        sha.update(digest_line(
            i as i64,
            o.kind,
            &o.system,
            &o.person_id,
            o.entitlement.as_deref(),
        ));
    }
    hex::encode(sha.finalize())
}

/// One operation's line in a digest: "n|kind|system|person|entitlement\n", n being its
/// seq in the plan or its queue id.
fn digest_line(
    n: i64,
    kind: OperationKind,
    system: &str,
    person: &str,
    entitlement: Option<&str>,
) -> String {
    format!(
        "{n}|{}|{system}|{person}|{}\n",
        kind.as_str(),
        entitlement.unwrap_or("-")
    )
}

/// Where enqueued operations come from.
#[derive(Debug, Clone, Copy)]
pub struct Origin<'a> {
    pub plan_id: Option<&'a str>,
    /// `plan:ID`, `reconcile:RUN`, ...
    pub cause: &'a str,
    /// Already counted in the queue's counts under this status (a plan's backlog), or
    /// None to count them as they are enqueued.
    pub counted_as: Option<OperationStatus>,
}

/// Enqueue planned operations in `tx`: account creations first, in system-dependency
/// order, so the operations that wait on them can name them; then the rest person by
/// person. Memberships wait on their account's creation (this batch's or one already
/// queued); grants that need approval wait for an approver. `on_new` sees each operation
/// that was not already queued. Returns each op's id, in the order of `ops`.
pub fn enqueue_planned(
    tx: &mut crate::store::Tx<'_>,
    catalog: &Catalog,
    ops: &[&PlannedOp],
    origin: Origin<'_>,
    report: &mut ApplyReport,
    mut on_new: impl FnMut(i64, &NewOp<'_>),
) -> Result<Vec<i64>> {
    // Creations already queued (by earlier plans) that these operations wait on.
    let inflight = inflight_creates(tx.conn(), ops)?;
    let mut ids = vec![0i64; ops.len()];
    let mut enqueue = |tx: &mut crate::store::Tx<'_>, op: &NewOp<'_>| -> Result<i64> {
        let (op_id, fresh) = tx.enqueue_unaudited(op)?;
        if fresh {
            on_new(op_id, op);
        }
        Ok(op_id)
    };
    let order = system_order(catalog);
    let mut creates: HashMap<(Arc<str>, Arc<str>), i64> = HashMap::new();
    let mut sorted: Vec<(usize, &PlannedOp)> = ops
        .iter()
        .copied()
        .enumerate()
        .filter(|(_, o)| o.kind == OperationKind::CreateAccount)
        .collect();
    sorted.sort_by_key(|(_, o)| {
        (
            order.get(&*o.system).copied().unwrap_or(usize::MAX),
            o.person_id.clone(),
        )
    });
    for (i, o) in sorted {
        let mut deps = Vec::new();
        if let Some(entry) = catalog.systems.get(&*o.system) {
            for d in &entry.system.depends_on {
                let d: Arc<str> = Arc::from(d.as_str());
                let key = (o.person_id.clone(), d);
                if let Some(id) = creates.get(&key).or_else(|| inflight.get(&key)) {
                    deps.push(*id);
                }
            }
        }
        let op_id = enqueue(
            tx,
            &NewOp {
                kind: o.kind,
                system: &o.system,
                person_id: &o.person_id,
                entitlement: None,
                status: OperationStatus::Queued,
                priority: PRIORITY_NORMAL,
                plan_id: origin.plan_id,
                cause: origin.cause,
                depends_on: &deps,
                not_before: None,
                counted_as: origin.counted_as,
            },
        )?;
        creates.insert((o.person_id.clone(), o.system.clone()), op_id);
        ids[i] = op_id;
        report.queued += 1;
    }
    // The rest person by person, so each index grows in order.
    let mut rest: Vec<(usize, &PlannedOp)> = ops
        .iter()
        .copied()
        .enumerate()
        .filter(|(_, o)| o.kind != OperationKind::CreateAccount)
        .collect();
    rest.sort_by(|a, b| (&a.1.system, &a.1.person_id).cmp(&(&b.1.system, &b.1.person_id)));
    for (i, o) in rest {
        let mut deps = Vec::new();
        if matches!(
            o.kind,
            OperationKind::AddMembership
                | OperationKind::Reactivate
                | OperationKind::UpdateAttributes
        ) {
            let key = (o.person_id.clone(), o.system.clone());
            if let Some(c) = creates.get(&key).or_else(|| inflight.get(&key)) {
                deps.push(*c);
            }
        }
        let status = if o.requires_approval {
            OperationStatus::PendingApproval
        } else if o.not_before.is_some() {
            OperationStatus::Scheduled
        } else {
            OperationStatus::Queued
        };
        let priority = priority_of(o.kind);
        let op_id = enqueue(
            tx,
            &NewOp {
                kind: o.kind,
                system: &o.system,
                person_id: &o.person_id,
                entitlement: o.entitlement.as_deref(),
                status,
                priority,
                plan_id: origin.plan_id,
                cause: origin.cause,
                depends_on: &deps,
                not_before: o.not_before,
                counted_as: origin.counted_as,
            },
        )?;
        ids[i] = op_id;
        if o.requires_approval {
            tx.conn().prepare_cached(
                "INSERT INTO approvals (person_id, entitlement, rule, status, requested_at, op_id)
                 SELECT ?1, ?2, COALESCE((SELECT rule FROM intended_grants WHERE person_id = ?1 AND entitlement = ?2), ''), 'pending', ?3, ?4
                 WHERE NOT EXISTS (SELECT 1 FROM approvals WHERE op_id = ?4)",
            )?
            .execute(params![&*o.person_id, o.entitlement.as_deref(), crate::store::queue::ts(tx.now), op_id])?;
            report.pending_approval += 1;
        } else {
            report.queued += 1;
        }
    }
    Ok(ids)
}

/// Every account creation not yet finished, by (person, system).
type PersonSystem = (Arc<str>, Arc<str>);

/// The account creations not yet finished of the people in `ops`, by (person, system).
fn inflight_creates(
    conn: &rusqlite::Connection,
    ops: &[&PlannedOp],
) -> Result<HashMap<PersonSystem, i64>> {
    let mut stmt = conn.prepare_cached(
        "SELECT system, max(id) FROM operations WHERE person_id = ?1 AND kind = 'create_account'
         AND status NOT IN ('succeeded','failed','cancelled') GROUP BY system",
    )?;
    let mut out = HashMap::new();
    let people: HashSet<&Arc<str>> = ops.iter().map(|o| &o.person_id).collect();
    for p in people {
        let rows = stmt.query_map([&**p], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?))
        })?;
        for row in rows {
            let (system, id) = row?;
            out.insert((p.clone(), Arc::from(system)), id);
        }
    }
    Ok(out)
}

/// Systems in dependency order (dependencies first). The config loader refuses cycles.
pub fn system_order(catalog: &Catalog) -> HashMap<String, usize> {
    let mut order = HashMap::new();
    fn depth(
        name: &str,
        catalog: &Catalog,
        seen: &mut HashMap<String, usize>,
        guard: usize,
    ) -> usize {
        if let Some(d) = seen.get(name) {
            return *d;
        }
        let d = if guard > 64 {
            0
        } else {
            catalog.systems.get(name).map_or(0, |e| {
                e.system
                    .depends_on
                    .iter()
                    .map(|x| depth(x, catalog, seen, guard + 1) + 1)
                    .max()
                    .unwrap_or(0)
            })
        };
        seen.insert(name.to_string(), d);
        d
    }
    for name in catalog.systems.keys() {
        depth(name, catalog, &mut order, 0);
    }
    order
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(kind: OperationKind, person: &str, ent: Option<&str>) -> PlannedOp {
        PlannedOp {
            kind,
            system: Arc::from("okta"),
            person_id: Arc::from(person),
            entitlement: ent.map(Arc::from),
            requires_approval: false,
            not_before: None,
            detail: None,
        }
    }

    /// The guard counts accounts against the account threshold, and says how many
    /// memberships those are (it once called 775 memberships "775 accounts").
    #[test]
    fn the_guard_counts_accounts_and_says_what_it_counted() {
        let mut ops = Vec::new();
        for p in 0..30 {
            for g in ["a", "b", "c"] {
                ops.push(op(
                    OperationKind::RemoveMembership,
                    &format!("E{p}"),
                    Some(&format!("okta:group:{g}")),
                ));
            }
        }
        let counts: HashMap<Arc<str>, usize> = [(Arc::from("okta"), 100)].into();
        let reasons = guard(
            &ops,
            &counts,
            &Catalog::default(),
            &GuardThresholds::default(),
        );
        assert_eq!(
            reasons,
            vec![
                "okta: the plan would remove 90 memberships from 30 accounts (30% of its 100 accounts); the limit is 10 accounts (10% of accounts, at least 5)"
                    .to_string()
            ]
        );
        // 3 memberships of 3 people: 3 accounts, under the limit of 10.
        assert!(
            guard(
                &ops[..9],
                &counts,
                &Catalog::default(),
                &GuardThresholds::default()
            )
            .is_empty()
        );
    }
}
