//! Polling BambooHR (its simulator) into people: the first poll brings everyone (leavers
//! included) in; a poll with nothing new does nothing; a mover and a leaver are one change
//! each; the same records read again are unchanged against their digests; a poll that
//! would make most of the company leavers is held whole by the mass-change guard until an
//! admin approves it; a poll cut short halfway and then run again applies nothing twice
//! and nothing the source did not say; a failed read keeps the cursor and says why.

#[path = "common/poll.rs"]
mod poll;

use accessdesk::secrets::Secret;
use accessdesk::sim::bamboohr::{self, BambooSimOptions, SimEmployee};
use accessdesk::sources::bamboohr::BambooClient;
use accessdesk::sources::poll::{BambooFeed, Feed, FeedPage, PollReport, poll_once};
use poll::PollRig;

const KEY: &str = "bamboo-poll-test-key";

const SOURCES: &str = r#"
[sources.bamboo]
kind = "bamboohr"
base_url = "http://placeholder"
credential = "env:BAMBOO_KEY"
[sources.bamboo.mapping]
employee_id = "record.employeeNumber"
first_name = "record.firstName"
last_name = "record.lastName"
email = "record.workEmail"
department = "record.department"
title = "record.jobTitle"
status = "record.status == 'Active' ? 'active' : 'terminated'"
start_date = "record.hireDate == '0000-00-00' ? '' : record.hireDate"
end_date = "record.terminationDate == '0000-00-00' ? '' : record.terminationDate"
"#;

fn people(n: u64) -> Vec<SimEmployee> {
    let mut out = vec![
        SimEmployee::new(1, "美咲", "佐藤", "misaki@northwind.example"),
        SimEmployee::new(2, "Zoë", "Ødegård", "zoe@northwind.example"),
    ];
    for i in 3..=n {
        out.push(SimEmployee::new(
            i,
            "Pat",
            &format!("Person{i}"),
            &format!("pat{i}@northwind.example"),
        ));
    }
    for e in &mut out {
        e.department = Some("Engineering".into());
    }
    out
}

struct Rig {
    _server: accessdesk::sim::SimServer,
    sim: accessdesk::sim::bamboohr::BambooHandle,
    feed: BambooFeed,
    rig: PollRig,
}

impl std::ops::Deref for Rig {
    type Target = PollRig;
    fn deref(&self) -> &PollRig {
        &self.rig
    }
}

impl Rig {
    async fn new(n: u64) -> Rig {
        let (server, sim) = bamboohr::spawn(BambooSimOptions {
            api_keys: vec![KEY.into()],
            employees: people(n),
            ..Default::default()
        })
        .await
        .unwrap();
        let client = BambooClient::new(
            "bamboo",
            &server.base_url(),
            Secret::new(KEY),
            "env:BAMBOO_KEY",
        )
        .unwrap();
        Rig {
            _server: server,
            sim,
            feed: BambooFeed(client),
            rig: PollRig::new(SOURCES, "bamboo"),
        }
    }

    async fn poll(&self, approval: Option<&str>) -> PollReport {
        self.rig.try_poll(&self.feed, approval).await.unwrap()
    }

    fn changes(&self, r: &PollReport) -> Vec<String> {
        PollRig::changes(r)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn polls_turn_changes_into_joiners_movers_and_leavers_once_each() {
    let rig = Rig::new(10).await;
    let today = rig.sim.now().date_naive();
    rig.sim.terminate(10, today).unwrap();
    let r = rig.poll(None).await;
    assert_eq!((r.read, r.applied.len()), (10, 10), "{r:?}");
    assert!(r.refused.is_empty(), "{r:?}");
    assert_eq!(rig.status("E0001"), "active");
    assert_eq!(rig.status("E0010"), "terminated");
    {
        let st = rig.store.lock().unwrap();
        let p = st.find_person("E0001").unwrap().unwrap();
        assert_eq!(
            (p.given_name.as_str(), p.family_name.as_str()),
            ("美咲", "佐藤")
        );
    }

    // Nothing changed: nothing read, nothing done.
    rig.sim.advance(std::time::Duration::from_secs(5));
    let r = rig.poll(None).await;
    assert_eq!((r.read, r.applied.len()), (0, 0), "{r:?}");

    // A mover and a leaver: one change each.
    rig.sim.advance(std::time::Duration::from_secs(5));
    rig.sim
        .move_to(2, Some("Finance"), Some("Analyst"), None)
        .unwrap();
    rig.sim.terminate(3, today).unwrap();
    let r = rig.poll(None).await;
    let mut got = rig.changes(&r);
    got.sort();
    assert_eq!(got, vec!["E0002 mover", "E0003 leaver"], "{r:?}");
    {
        let st = rig.store.lock().unwrap();
        assert_eq!(
            st.find_person("E0002").unwrap().unwrap().department,
            "Finance"
        );
    }

    // The same records read again (the cursor set back): unchanged by their digests.
    let page = rig.feed.changes(None).await.unwrap();
    let r = rig.apply(&page);
    assert_eq!((r.read, r.unchanged, r.applied.len()), (10, 10, 0), "{r:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_employee_deleted_in_bamboohr_is_the_leaver_their_record_mapped_to() {
    // A deletion carries only BambooHR's own id (not the employee number): the person
    // comes from what that record mapped to when it was polled.
    let rig = Rig::new(4).await;
    rig.poll(None).await;
    rig.sim.advance(std::time::Duration::from_secs(5));
    rig.sim.delete(3).unwrap();
    let r = rig.poll(None).await;
    assert_eq!(rig.changes(&r), vec!["E0003 leaver"], "{r:?}");
    assert!(r.refused.is_empty(), "{r:?}");
    assert_eq!(rig.status("E0003"), "terminated");
    assert_eq!(rig.status("E0002"), "active");
    // An id no poll ever mapped is refused, naming the record, and terminates nobody.
    rig.sim.advance(std::time::Duration::from_secs(5));
    let fresh = rig
        .sim
        .hire(SimEmployee::new(0, "Kai", "Lee", "kai@northwind.example"))
        .unwrap();
    rig.sim.delete(fresh).unwrap();
    let r = rig.poll(None).await;
    assert!(r.applied.is_empty(), "{r:?}");
    assert_eq!(r.refused.len(), 1, "{r:?}");
    assert!(
        rig.store
            .lock()
            .unwrap()
            .all_people()
            .unwrap()
            .iter()
            .filter(|p| p.status.as_str() == "terminated")
            .count()
            == 1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poll_making_most_people_leavers_is_held_whole_until_approved() {
    let rig = Rig::new(10).await;
    rig.poll(None).await;
    let today = rig.sim.now().date_naive();
    rig.sim.advance(std::time::Duration::from_secs(5));
    for id in 2..=9 {
        rig.sim.terminate(id, today).unwrap();
    }
    let r = rig.poll(None).await;
    assert!(
        r.held
            .as_deref()
            .unwrap_or("")
            .contains("mass-change guard"),
        "{r:?}"
    );
    assert!(r.applied.is_empty());
    assert_eq!(
        rig.status("E0002"),
        "active",
        "a held poll applied something"
    );
    // Held again next time: the cursor did not move.
    let r = rig.poll(None).await;
    assert!(r.held.is_some(), "{r:?}");
    {
        let st = rig.store.lock().unwrap();
        let state = st.source_state("bamboo").unwrap().unwrap();
        assert!(
            state["held"].as_str().unwrap().contains("leavers"),
            "{state}"
        );
    }
    let r = rig.poll(Some("the Berlin office closed")).await;
    assert_eq!((r.held.as_deref(), r.applied.len()), (None, 8), "{r:?}");
    assert_eq!(rig.status("E0009"), "terminated");
    let st = rig.store.lock().unwrap();
    let audit = st.audit_events(None, None).unwrap();
    assert!(
        audit
            .iter()
            .any(|e| e.action == "source.mass_change_approved"
                && e.details.to_string().contains("Berlin"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poll_cut_short_is_resumed_without_duplicates_or_phantoms() {
    let rig = Rig::new(6).await;
    // The first poll applies only its first three records, then "crashes" (no cursor).
    let page = rig.feed.changes(None).await.unwrap();
    let half = FeedPage {
        records: page.records[..3].to_vec(),
        ..Default::default()
    };
    let r = rig.apply(&half);
    assert_eq!(r.applied.len(), 3);
    // The next poll reads from the old cursor: the three are unchanged, the rest join.
    let r = rig.poll(None).await;
    assert_eq!((r.read, r.unchanged, r.applied.len()), (6, 3, 3), "{r:?}");
    let st = rig.store.lock().unwrap();
    let created: i64 = st
        .conn()
        .query_row(
            "SELECT count(*) FROM audit_events WHERE action = 'person.created'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(created, 6, "each person created once");
    assert_eq!(st.all_people().unwrap().len(), 6, "no phantom people");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_read_keeps_the_cursor_and_says_why() {
    let rig = Rig::new(3).await;
    rig.poll(None).await;
    let before = rig
        .store
        .lock()
        .unwrap()
        .source_state("bamboo")
        .unwrap()
        .unwrap();
    rig.sim.revoke_api_key(KEY);
    let ctx = rig.ctx();
    let e = poll_once(&rig.feed, &rig.store, &ctx, &rig.source, None)
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("401"), "{e}");
    assert!(!e.contains(KEY), "{e}");
    let after = rig
        .store
        .lock()
        .unwrap()
        .source_state("bamboo")
        .unwrap()
        .unwrap();
    assert_eq!(after["cursor"], before["cursor"]);
    assert!(after["error"].as_str().unwrap().contains("401"), "{after}");
}
