//! Applying a plan makes queue rows for its first people only; the rest wait in the plan's
//! backlog (store/backlog.rs) until the workers reach them. These tests prove that the
//! backlog is queued work for everyone who reads the queue: the counts, a second plan,
//! a person's view, a leaver's cancellation, and the workers, which drain it in order and
//! do everything exactly once.

use accessdesk::bench::store::{insert_people_with_grants, synthetic_person};
use accessdesk::config::SystemsConfig;
use accessdesk::config::systems::GuardThresholds;
use accessdesk::engine::apply::{apply_plan_with, make_plan, materialise, materialise_all};
use accessdesk::engine::plan::Scope;
use accessdesk::engine::workers::{Engine, EngineConfig, SystemRuntime};
use accessdesk::model::{EmploymentStatus, OperationStatus, SystemKind};
use accessdesk::sim::memory::MemoryDirectory;
use accessdesk::store::Store;
use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Two systems, the second depending on the first; each person gets an account and two
/// groups in each: 6 operations a person.
fn config() -> SystemsConfig {
    SystemsConfig::parse(
        Path::new("systems.toml"),
        r#"
[systems.m0]
kind = "scim"
base_url = "http://127.0.0.1:9"

[systems.m1]
kind = "scim"
base_url = "http://127.0.0.1:9"
depends_on = ["m0"]
"#,
    )
    .unwrap()
}

const GRANTS: [&str; 4] = [
    "m0:group:all",
    "m0:group:eng",
    "m1:group:all",
    "m1:group:vpn",
];
const PER_PERSON: usize = 6;

fn seeded(dir: &Path, people: usize) -> Store {
    let mut store = Store::open(&dir.join("t.db")).unwrap();
    let persons: Vec<_> = (0..people).map(synthetic_person).collect();
    store
        .write(|tx| insert_people_with_grants(tx, &persons, &GRANTS))
        .unwrap();
    store
}

fn plan(store: &mut Store, cfg: &SystemsConfig) -> accessdesk::engine::apply::StoredPlan {
    make_plan(
        store,
        &cfg.catalog,
        &GuardThresholds::default(),
        &Scope::default(),
        "t",
    )
    .unwrap()
}

/// Synthetic person `i` is terminated, through the import's upsert.
fn leave(store: &mut Store, i: usize) -> accessdesk::model::Person {
    let mut leaver = synthetic_person(i);
    leaver.status = EmploymentStatus::Terminated;
    store
        .write(|tx| tx.upsert_person(&leaver, "t").map(|_| ()))
        .unwrap();
    leaver
}

fn count(store: &Store, sql: &str) -> i64 {
    store.conn().query_row(sql, [], |r| r.get(0)).unwrap()
}

fn queued_total(store: &Store) -> i64 {
    store
        .queue_counts()
        .unwrap()
        .iter()
        .filter(|(_, s, _)| s == "queued")
        .map(|(_, _, n)| n)
        .sum()
}

#[test]
fn the_backlog_is_queued_work_for_every_reader_of_the_queue() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config();
    let mut store = seeded(dir.path(), 10);
    let p = plan(&mut store, &cfg);
    assert_eq!(p.ops.len(), 10 * PER_PERSON);
    // Rows for at least 4 operations now: whole people, so exactly one person's 6.
    let report = apply_plan_with(&mut store, &cfg.catalog, &p.id, "t", None, 4).unwrap();
    assert_eq!(report.queued, 60, "{report:?}");
    assert_eq!(count(&store, "SELECT count(*) FROM operations"), 6);
    assert_eq!(
        count(&store, "SELECT count(DISTINCT person_id) FROM operations"),
        1
    );
    // Counted as queued, all 60; 27 of each system's 30 still in the backlog.
    assert_eq!(queued_total(&store), 60);
    assert_eq!(
        store.backlog_counts().unwrap(),
        vec![("m0".to_string(), 27), ("m1".to_string(), 27)]
    );
    assert_eq!(store.waiting_ops("m1", 100).unwrap().0, 30);
    // A second plan sees it all in flight: nothing to do.
    assert!(plan(&mut store, &cfg).ops.is_empty());
    // A person in the backlog shows their queued operations (no row id yet).
    let later = synthetic_person(7).hris_id;
    let theirs = store.ops_for_person(&later, 50).unwrap();
    assert_eq!(theirs.len(), PER_PERSON);
    assert!(
        theirs
            .iter()
            .all(|o| o.id == 0 && o.status == OperationStatus::Queued)
    );
    // Applied is applied.
    let again = apply_plan_with(&mut store, &cfg.catalog, &p.id, "t", None, 4).unwrap_err();
    assert!(again.to_string().contains("already applied"), "{again}");

    // The workers' batches: whole people, oldest first, until nothing is left.
    let n = store
        .write(|tx| materialise(tx, &cfg.catalog, 7, "t"))
        .unwrap();
    assert_eq!(n, 12, "at least 7 operations, in whole people");
    assert_eq!(materialise_all(&mut store, &cfg.catalog, "t").unwrap(), 42);
    assert_eq!(
        store
            .write(|tx| materialise(tx, &cfg.catalog, 7, "t"))
            .unwrap(),
        0
    );
    assert!(store.backlog_counts().unwrap().is_empty());
    assert_eq!(count(&store, "SELECT count(*) FROM operations"), 60);
    assert_eq!(
        count(
            &store,
            "SELECT count(DISTINCT idempotency_key) FROM operations"
        ),
        60
    );
    assert_eq!(queued_total(&store), 60);
    // Every membership waits on its own account's creation, and every m1 account on the
    // same person's m0 account: dependencies are whole within a batch.
    assert_eq!(
        count(
            &store,
            "SELECT count(*) FROM operations o WHERE o.kind = 'add_membership' AND o.unmet_deps = 1
             AND EXISTS (SELECT 1 FROM op_deps d JOIN operations c ON c.id = d.depends_on
                         WHERE d.op_id = o.id AND c.kind = 'create_account'
                           AND c.person_id = o.person_id AND c.system = o.system)"
        ),
        40
    );
    assert_eq!(
        count(
            &store,
            "SELECT count(*) FROM operations o WHERE o.kind = 'create_account' AND o.system = 'm1'
             AND EXISTS (SELECT 1 FROM op_deps d JOIN operations c ON c.id = d.depends_on
                         WHERE d.op_id = o.id AND c.system = 'm0' AND c.person_id = o.person_id)"
        ),
        10
    );
    // The audit log says what was applied and which rows each batch made.
    assert_eq!(
        count(
            &store,
            "SELECT count(*) FROM audit_events WHERE action = 'plan.applied'
             AND json_extract(details, '$.rows_now') = 6 AND json_extract(details, '$.in_backlog') = 54"
        ),
        1
    );
    assert_eq!(
        count(
            &store,
            "SELECT sum(json_extract(details, '$.rows')) FROM audit_events WHERE action = 'plan.materialised'"
        ),
        54
    );
    assert!(store.audit_verify().unwrap().is_ok());
}

#[test]
fn a_leaver_s_grants_in_the_backlog_are_cancelled_with_the_change_that_made_them_leave() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config();
    let mut store = seeded(dir.path(), 5);
    let p = plan(&mut store, &cfg);
    apply_plan_with(&mut store, &cfg.catalog, &p.id, "t", None, 0).unwrap();
    assert_eq!(count(&store, "SELECT count(*) FROM operations"), 0);
    assert_eq!(queued_total(&store), 30);
    let leaver = leave(&mut store, 3);
    // Their six are rows now, every one cancelled (each a grant), and audited.
    assert_eq!(
        count(
            &store,
            &format!(
                "SELECT count(*) FROM operations WHERE person_id = '{}' AND status = 'cancelled'",
                leaver.hris_id
            )
        ),
        6
    );
    assert_eq!(count(&store, "SELECT count(*) FROM operations"), 6);
    assert_eq!(queued_total(&store), 24);
    assert_eq!(
        store.backlog_counts().unwrap(),
        vec![("m0".to_string(), 12), ("m1".to_string(), 12)]
    );
    assert!(
        store
            .ops_for_person(&leaver.hris_id, 50)
            .unwrap()
            .iter()
            .all(|o| o.id > 0 && o.status == OperationStatus::Cancelled)
    );
    // The plan's turn skips them: nothing is made twice.
    assert_eq!(materialise_all(&mut store, &cfg.catalog, "t").unwrap(), 24);
    assert_eq!(count(&store, "SELECT count(*) FROM operations"), 30);
    assert_eq!(queued_total(&store), 24);
    assert!(store.audit_verify().unwrap().is_ok());
}

#[test]
fn people_waiting_for_an_approver_get_their_rows_when_the_plan_is_applied() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config();
    let mut store = seeded(dir.path(), 6);
    let waiting = synthetic_person(4).hris_id;
    store
        .conn()
        .execute(
            "UPDATE intended_grants SET requires_approval = 1 WHERE person_id = ?1 AND entitlement = 'm1:group:vpn'",
            [&waiting],
        )
        .unwrap();
    let p = plan(&mut store, &cfg);
    let report = apply_plan_with(&mut store, &cfg.catalog, &p.id, "t", None, 0).unwrap();
    assert_eq!((report.queued, report.pending_approval), (35, 1));
    // That person's six are rows (one for the approver); nobody else's yet.
    assert_eq!(count(&store, "SELECT count(*) FROM operations"), 6);
    assert_eq!(
        count(
            &store,
            "SELECT count(*) FROM approvals a JOIN operations o ON o.id = a.op_id
             WHERE o.status = 'pending_approval' AND a.status = 'pending'"
        ),
        1
    );
    assert_eq!(materialise_all(&mut store, &cfg.catalog, "t").unwrap(), 30);
    assert_eq!(count(&store, "SELECT count(*) FROM operations"), 36);
}

#[test]
fn the_workers_drain_the_backlog_and_do_everything_once() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config();
    let people = 40;
    let mut store = seeded(dir.path(), people);
    let p = plan(&mut store, &cfg);
    apply_plan_with(&mut store, &cfg.catalog, &p.id, "t", None, 1).unwrap();
    let dirs: Vec<Arc<MemoryDirectory>> = ["m0", "m1"]
        .iter()
        .map(|s| Arc::new(MemoryDirectory::new(s)))
        .collect();
    let runtimes: HashMap<String, SystemRuntime> = ["m0", "m1"]
        .iter()
        .zip(&dirs)
        .map(|(s, d)| {
            (
                s.to_string(),
                SystemRuntime::new(d.clone(), SystemKind::Scim, 8, false),
            )
        })
        .collect();
    let store = Arc::new(Mutex::new(store));
    let engine = Arc::new(Engine::new(
        store.clone(),
        Arc::new(cfg.catalog.clone()),
        runtimes,
        EngineConfig {
            idle_poll: Duration::from_millis(5),
            actor: "t".into(),
            ..EngineConfig::default()
        },
    ));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let summary = rt.block_on(engine.run_until_idle(None)).unwrap();
    assert_eq!(summary.succeeded, people * PER_PERSON, "{summary:?}");
    for d in &dirs {
        assert_eq!(d.account_count(), people);
        assert_eq!(d.membership_count(), people * 2);
        assert_eq!(d.max_creates(), 1);
    }
    let store = store.lock().unwrap();
    assert!(store.backlog_counts().unwrap().is_empty());
    assert_eq!(
        count(&store, "SELECT count(*) FROM plan_backlog"),
        0,
        "the plan left the backlog"
    );
    assert_eq!(queued_total(&store), 0);
}

/// A plan whose remaining people all left (their operations taken out of turn) has nothing
/// left to make: the next plan's batch comes instead, so the workers (and
/// `materialise_all`) do not stop while another plan still waits.
#[test]
fn a_plan_emptied_by_leavers_makes_way_for_the_next() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config();
    let mut store = seeded(dir.path(), 1);
    let first = plan(&mut store, &cfg);
    apply_plan_with(&mut store, &cfg.catalog, &first.id, "t", None, 0).unwrap();
    let newcomers: Vec<_> = (1..3).map(synthetic_person).collect();
    store
        .write(|tx| insert_people_with_grants(tx, &newcomers, &GRANTS))
        .unwrap();
    let second = plan(&mut store, &cfg);
    assert_eq!(second.ops.len(), 2 * PER_PERSON);
    apply_plan_with(&mut store, &cfg.catalog, &second.id, "t", None, 0).unwrap();
    leave(&mut store, 0);
    assert_eq!(
        store
            .write(|tx| materialise(tx, &cfg.catalog, 1, "t"))
            .unwrap(),
        PER_PERSON,
        "the second plan's first person"
    );
    assert_eq!(
        materialise_all(&mut store, &cfg.catalog, "t").unwrap(),
        PER_PERSON
    );
    assert_eq!(count(&store, "SELECT count(*) FROM plan_backlog"), 0);
    assert!(store.backlog_counts().unwrap().is_empty());
    assert_eq!(
        count(&store, "SELECT count(*) FROM operations"),
        3 * PER_PERSON as i64
    );
}
