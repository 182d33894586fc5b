//! Leavers against moto (a real IAM implementation, signatures checked):
//! - a person who leaves while their onboarding is still queued never gets an IAM user;
//! - the workers re-check the person before any granting operation, even when the store
//!   changed behind the import's back;
//! - a future end date schedules the deactivation, which runs when due with no further
//!   import (the engine's clock is moved forward instead of waiting days).

#[path = "common/aws_contract.rs"]
mod contract;
#[path = "common/engine.rs"]
mod engine;
#[path = "common/moto.rs"]
mod moto;

use accessdesk::model::{EmploymentStatus, OperationStatus, Person};
use contract::{MotoTarget, SLOW, iam, xml_all};
use engine::{Entry, Run, fast};

const GRANTS: &[&str] = &["aws:group:everyone", "aws:group:engineering"];

async fn setup() -> (MotoTarget, Run) {
    let t = MotoTarget::start().await;
    let admin = iam(&t.moto.url, &t.admin.credential(), "", SLOW);
    for g in ["everyone", "engineering"] {
        admin
            .call("CreateGroup", &[("GroupName", g)])
            .await
            .unwrap();
    }
    let run =
        Run::new(
            &[Entry::new("aws", "aws_iam", &t.moto.url, "aws-test")
                .settings("region = \"us-east-1\"")],
            &[("aws-test", &t.admin.credential())],
        );
    (t, run)
}

fn statuses(run: &Run, person: &str) -> Vec<(String, String)> {
    let s = run.store.lock().unwrap();
    let mut stmt = s
        .conn()
        .prepare("SELECT kind, status FROM operations WHERE person_id = ?1 ORDER BY id")
        .unwrap();
    stmt.query_map([person], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

async fn iam_user(t: &MotoTarget, name: &str) -> bool {
    let admin = iam(&t.moto.url, &t.admin.credential(), "", SLOW);
    admin.call("GetUser", &[("UserName", name)]).await.is_ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leavers_queued_onboarding_never_runs() {
    let (t, run) = setup().await;
    let mut ada = Person::new("E1", "Ada", "Lovelace", "ada@example.com");
    // Onboarding planned and queued, not yet run.
    assert_eq!(run.set_people(&[(ada.clone(), GRANTS.to_vec())]), 3);
    // HR terminates her before the workers get to it.
    ada.status = EmploymentStatus::Terminated;
    assert_eq!(run.set_people(&[(ada, vec![])]), 0, "nothing to plan");
    let ops = statuses(&run, "E1");
    assert_eq!(ops.len(), 3);
    assert!(ops.iter().all(|(_, st)| st == "cancelled"), "{ops:?}");
    let summary = run.engine(fast()).run_until_idle(None).await.unwrap();
    assert_eq!(summary.succeeded, 0, "{summary:?}");
    assert!(!iam_user(&t, "ada").await, "the leaver got an IAM user");
    assert_eq!(run.plan_apply(), 0);
    run.audit_ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workers_recheck_the_person_before_granting() {
    let (t, run) = setup().await;
    let bo = Person::new("E2", "Bo", "Diddley", "bo@example.com");
    assert_eq!(run.set_people(&[(bo, GRANTS.to_vec())]), 3);
    // The store changes without going through the import (another process, a restore):
    // nothing cancelled the queue, so the workers must notice themselves.
    run.store
        .lock()
        .unwrap()
        .conn()
        .execute(
            "UPDATE people SET status = 'terminated' WHERE hris_id = 'E2'",
            [],
        )
        .unwrap();
    let summary = run.engine(fast()).run_until_idle(None).await.unwrap();
    assert_eq!(summary.succeeded, 0, "{summary:?}");
    let ops = statuses(&run, "E2");
    assert!(ops.iter().all(|(_, st)| st == "cancelled"), "{ops:?}");
    assert!(!iam_user(&t, "bo").await, "the leaver got an IAM user");
    let why: String = run
        .store
        .lock()
        .unwrap()
        .conn()
        .query_row(
            "SELECT details FROM audit_events WHERE action = 'op.status' AND details LIKE '%cancelled before it ran%' LIMIT 1",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(why.contains("E2 is a leaver"), "{why}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_future_end_date_schedules_the_deactivation_which_runs_when_due() {
    let (t, run) = setup().await;
    let admin = iam(&t.moto.url, &t.admin.credential(), "", SLOW);
    let mut cy = Person::new("E3", "Cy", "Young", "cy@example.com");
    cy.end_date = chrono::Utc::now()
        .date_naive()
        .checked_add_days(chrono::Days::new(3));
    assert_eq!(run.set_people(&[(cy.clone(), GRANTS.to_vec())]), 3);
    let summary = run.engine(fast()).run_until_idle(None).await.unwrap();
    assert_eq!(summary.failed, 0, "{summary:?}");
    let key = admin
        .call("CreateAccessKey", &[("UserName", "cy")])
        .await
        .unwrap();
    assert_eq!(xml_all(&key.body, "Status"), ["Active"]);

    // The next plan schedules the deactivation for the day after the end date.
    assert_eq!(run.plan_apply(), 1);
    let scheduled = run
        .store
        .lock()
        .unwrap()
        .ops_with_status(&[OperationStatus::Scheduled], 10)
        .unwrap();
    assert_eq!(scheduled.len(), 1);
    assert_eq!(scheduled[0].kind.as_str(), "deactivate");
    // Not due yet: running the queue leaves it alone, and Cy keeps her access.
    run.engine(fast()).run_until_idle(None).await.unwrap();
    let r = admin
        .call("ListAccessKeys", &[("UserName", "cy")])
        .await
        .unwrap();
    assert_eq!(xml_all(&r.body, "Status"), ["Active"]);
    assert_eq!(statuses(&run, "E3").last().unwrap().1, "scheduled");
    // Nothing more to plan meanwhile.
    assert_eq!(run.plan_apply(), 0);

    // Five days later, with no import in between, the engine runs it.
    let mut later = fast();
    later.clock_offset = chrono::Duration::days(5);
    let summary = run.engine(later).run_until_idle(None).await.unwrap();
    assert_eq!(summary.succeeded, 1, "{summary:?}");
    let r = admin
        .call("ListAccessKeys", &[("UserName", "cy")])
        .await
        .unwrap();
    assert_eq!(xml_all(&r.body, "Status"), ["Inactive"]);
    let r = admin
        .call("ListGroupsForUser", &[("UserName", "cy")])
        .await
        .unwrap();
    assert!(xml_all(&r.body, "GroupName").is_empty());
    run.audit_ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scheduled_deactivation_is_cancelled_when_the_end_date_is_withdrawn() {
    let (_t, run) = setup().await;
    let mut di = Person::new("E4", "Di", "Fossey", "di@example.com");
    di.end_date = chrono::Utc::now()
        .date_naive()
        .checked_add_days(chrono::Days::new(2));
    run.set_people(&[(di.clone(), GRANTS.to_vec())]);
    run.engine(fast()).run_until_idle(None).await.unwrap();
    assert_eq!(run.plan_apply(), 1);
    // HR withdraws the end date; when the old time comes, nothing is deactivated.
    di.end_date = None;
    run.set_people(&[(di, GRANTS.to_vec())]);
    let mut later = fast();
    later.clock_offset = chrono::Duration::days(5);
    let summary = run.engine(later).run_until_idle(None).await.unwrap();
    assert_eq!(summary.succeeded, 0, "{summary:?}");
    assert_eq!(statuses(&run, "E4").last().unwrap().1, "cancelled");
    let acc = run
        .store
        .lock()
        .unwrap()
        .account_for("aws", "E4")
        .unwrap()
        .unwrap();
    assert!(acc.active);
}
