//! Shared by the reconciliation tests: observe one system in a new run through the
//! engine's adapter, reconcile it, and read its open findings.
#![allow(dead_code)]

use crate::engine::{Run, fast, person};
use accessdesk::engine::findings;
use accessdesk::engine::observe::observe_system;
use accessdesk::engine::reconcile::{Reconciled, reconcile_run};
use accessdesk::model::EmploymentStatus;
use accessdesk::store::reconcile::{FindingFilter, FindingRow};

/// Observe `system` in a new run and reconcile it; the open findings, in listing order.
pub async fn reconcile(run: &Run, system: &str) -> (i64, Vec<FindingRow>) {
    let engine = run.engine(fast());
    let adapter = engine.adapter(system).unwrap().clone();
    let entry = run.cfg.catalog.systems[system].clone();
    let id = start_run(run, system);
    let read = observe_system(&run.store, &adapter, &entry, id, &|_| {})
        .await
        .unwrap();
    assert!(read.complete, "{read:?}");
    let (_, f) = finish_and_reconcile(run, id, true);
    (id, f)
}

/// A new observation run over `system`.
pub fn start_run(run: &Run, system: &str) -> i64 {
    run.store
        .lock()
        .unwrap()
        .write(|tx| tx.start_run(None, &[system.to_string()], "test"))
        .unwrap()
}

/// Close run `id`, reconcile it, and read its findings (only the open ones with
/// `open_only`), in listing order.
pub fn finish_and_reconcile(run: &Run, id: i64, open_only: bool) -> (Reconciled, Vec<FindingRow>) {
    let mut s = run.store.lock().unwrap();
    s.write(|tx| tx.finish_run(id, "test")).unwrap();
    let r = reconcile_run(&mut s, &run.cfg.catalog, id, "test").unwrap();
    let f = s
        .findings(&FindingFilter {
            run: Some(id),
            open_only,
            ..Default::default()
        })
        .unwrap();
    (r, f)
}

/// (class, person, account, entitlement)
pub type Seen = (String, Option<String>, Option<String>, Option<String>);

pub fn summary(f: &[FindingRow]) -> Vec<Seen> {
    f.iter()
        .map(|f| {
            (
                f.class.clone(),
                f.person.clone(),
                f.account.clone(),
                f.entitlement.clone(),
            )
        })
        .collect()
}

/// A finding as `summary` shows it.
#[allow(dead_code)] // not every test that shares this file uses it
pub fn seen(class: &str, person: Option<&str>, account: Option<&str>, ent: Option<&str>) -> Seen {
    (
        class.to_string(),
        person.map(str::to_string),
        account.map(str::to_string),
        ent.map(str::to_string),
    )
}

/// Person `i` (engine::person) leaves in HR: terminated, stored through the usual upsert.
pub fn make_leaver(run: &Run, i: usize) {
    let mut leaver = person(i);
    leaver.status = EmploymentStatus::Terminated;
    run.store
        .lock()
        .unwrap()
        .write(|tx| tx.upsert_person(&leaver, "test"))
        .unwrap();
}

/// Every `(class, account)` in `want` is among the findings.
pub fn assert_found(f: &[FindingRow], want: &[(&str, &str)]) {
    let got: Vec<(&str, Option<&str>)> = f
        .iter()
        .map(|f| (f.class.as_str(), f.account.as_deref()))
        .collect();
    for (class, account) in want {
        let w = (*class, Some(*account));
        assert!(got.contains(&w), "{w:?} not in {got:?}");
    }
}

/// Enforce every finding, as an admin would from the console.
pub fn enforce_all(run: &Run, f: &[FindingRow]) -> Vec<findings::Outcome> {
    let mut st = run.store.lock().unwrap();
    findings::enforce(&mut st, &run.cfg.catalog, f, "test").unwrap()
}
