//! A run reconciled: every system classified in parallel from the store, the findings
//! stored, and each complete read adopted as actual access.

use super::World;
use super::adopt::adopt_observation;
use super::classify::{SystemClassifier, complete};
use crate::config::{Catalog, SystemEntry};
use crate::store::Store;
use crate::store::reconcile::{Checkpoint, NewFinding};
use crate::{Error, Result};
use chrono::Utc;
use serde::Serialize;

/// What reconciling a run found.
#[derive(Debug, Clone, Serialize)]
pub struct Reconciled {
    pub run: i64,
    pub complete: bool,
    pub systems: Vec<SystemSummary>,
    pub findings: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct SystemSummary {
    pub system: String,
    pub complete: bool,
    pub accounts: i64,
    pub memberships: i64,
    pub observed_at: Option<String>,
    pub error: Option<String>,
}

/// A run correlated and classified, not yet written.
pub struct Classified {
    pub world: World,
    pub findings: Vec<NewFinding>,
    pub systems: Vec<SystemSummary>,
    /// Each classified system's read.
    pub reads: Vec<Checkpoint>,
}

/// Classify one system of a run, streaming its accounts and memberships from `conn`.
pub fn classify_system(
    conn: &rusqlite::Connection,
    w: &World,
    entry: &SystemEntry,
    run: i64,
    read: &Checkpoint,
) -> Result<Vec<NewFinding>> {
    let groups = crate::store::reconcile::observed_groups_in(conn, run, &read.system)?;
    let mut c = SystemClassifier::new(w, entry, read, &groups);
    crate::store::reconcile::for_each_observed_account(
        conn,
        run,
        &read.system,
        &groups,
        |a, held| {
            c.account(a, held);
            Ok(())
        },
    )?;
    Ok(c.finish())
}

/// A system's findings, by the system's place in the run's reads.
type SystemFindings = (usize, Vec<NewFinding>);

/// The order findings are listed in: leavers and severity first (`rank`).
fn finding_order(a: &NewFinding, b: &NewFinding) -> std::cmp::Ordering {
    (a.rank, &a.system, &a.person, &a.account, &a.entitlement).cmp(&(
        b.rank,
        &b.system,
        &b.person,
        &b.account,
        &b.entitlement,
    ))
}

/// Load a run's observations and classify every system in it (no writes). Systems are
/// classified in parallel, each worker with a reader connection of its own where the
/// store has a file, taking the next system as it finishes one.
pub fn classify_run(store: &Store, catalog: &Catalog, run: i64) -> Result<Classified> {
    let world = World::load(store, Utc::now())?;
    let reads: Vec<Checkpoint> = store
        .checkpoints(run)?
        .into_iter()
        .filter(|c| catalog.systems.contains_key(&c.system))
        .collect();
    let workers = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .clamp(1, 4)
        .min(reads.len().max(1));
    let mut readers = Vec::new();
    for _ in 1..workers {
        match store.open_reader_in(store.read_mode())? {
            Some(c) => readers.push(c),
            None => break,
        }
    }
    let next = std::sync::atomic::AtomicUsize::new(0);
    let work = |conn: &rusqlite::Connection| -> Result<Vec<SystemFindings>> {
        let mut out = Vec::new();
        loop {
            let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let Some(read) = reads.get(i) else {
                return Ok(out);
            };
            let entry = &catalog.systems[&read.system];
            let mut f = classify_system(conn, &world, entry, run, read)?;
            // Sorted here, in parallel; the merge below then finds sorted runs.
            f.sort_by(finding_order);
            out.push((i, f));
        }
    };
    let results: Vec<Result<Vec<SystemFindings>>> = std::thread::scope(|scope| {
        let handles: Vec<_> = readers
            .into_iter()
            .map(|conn| scope.spawn(move || work(&conn)))
            .collect();
        let mut results = vec![work(store.conn())];
        results.extend(handles.into_iter().map(|h| {
            h.join()
                .unwrap_or_else(|_| Err(Error::Failed("a classifier thread panicked".into())))
        }));
        results
    });
    let mut per_system: Vec<SystemFindings> = Vec::new();
    for r in results {
        per_system.extend(r?);
    }
    per_system.sort_by_key(|(i, _)| *i);
    let mut findings = Vec::new();
    for (_, f) in per_system {
        findings.extend(f);
    }
    findings.sort_by(finding_order);
    let systems = reads
        .iter()
        .map(|r| SystemSummary {
            system: r.system.clone(),
            complete: complete(r),
            accounts: r.accounts,
            memberships: r.memberships,
            observed_at: r.observed_at.clone(),
            error: r.error.clone(),
        })
        .collect();
    Ok(Classified {
        world,
        findings,
        systems,
        reads,
    })
}

/// Correlate and classify a run, store its findings, and make each complete read the
/// actual access the planner sees.
pub fn reconcile_run(
    store: &mut Store,
    catalog: &Catalog,
    run: i64,
    actor: &str,
) -> Result<Reconciled> {
    let meta = store.run(run)?.ok_or_else(|| {
        Error::usage(
            format!("no observation run {run}"),
            "see `accessdesk findings list` for runs",
        )
    })?;
    // Read through the page cache, not a memory map: a run of a million memberships
    // would otherwise map the whole file into resident memory.
    let was = store.read_mode();
    store.set_read_mode(crate::store::ReadMode::Paged)?;
    let result = reconcile_paged(store, catalog, run, actor, &meta);
    store.set_read_mode(was)?;
    result
}

fn reconcile_paged(
    store: &mut Store,
    catalog: &Catalog,
    run: i64,
    actor: &str,
    meta: &crate::store::reconcile::RunRow,
) -> Result<Reconciled> {
    let c = classify_run(store, catalog, run)?;
    let n = c.findings.len();
    store.write(|tx| {
        tx.store_findings(run, &c.findings, actor)?;
        for read in c.reads.iter().filter(|r| complete(r)) {
            let entry = &catalog.systems[&read.system];
            adopt_observation(tx, &c.world, entry, run, read, &meta.started_at, actor)?;
        }
        Ok(())
    })?;
    Ok(Reconciled {
        run,
        complete: meta.status == "complete" && c.systems.iter().all(|s| s.complete),
        systems: c.systems,
        findings: n,
    })
}
