//! Polling Workday (its simulator) into people, through the Workers REST API and a RaaS
//! report, behind Workday's OAuth token endpoint:
//! - every poll reads a snapshot; unchanged workers do nothing; a mover is one change; a
//!   worker gone from a complete snapshot is a leaver, applied once; a termination entered
//!   ahead of its date keeps the person active with their end date;
//! - identity: two workers with the same name are two people; a leaver and a same-named
//!   joiner in one poll stay two people, the joiner never inheriting the leaver's record;
//! - a snapshot read while the tenant changes, or cut off by a failing page, infers no
//!   leaver; a poll making most people leavers is held by the mass-change guard;
//! - tokens: the refresh-token grant, a new token after expiry, client credentials, and a
//!   revoked refresh token's error naming the keychain entry and no secret;
//! - 429s with Retry-After are waited out.

#[path = "common/poll.rs"]
mod poll;

use accessdesk::secrets::Secret;
use accessdesk::sim::workday::{
    self, BodyFault, DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, DEFAULT_REFRESH_TOKEN, FailRule,
    SimWorker, WorkdayHandle, WorkdaySimOptions, WorkerType,
};
use accessdesk::sources::poll::{PollReport, WorkdayFeed};
use accessdesk::sources::workday::{WorkdayClient, WorkdayCredential};
use poll::PollRig;
use std::time::Duration;

const WORKERS_MAPPING: &str = r#"
[sources.workday.mapping]
employee_id = "record.workerId"
first_name = "record.descriptor.split(' ')[0]"
last_name = "record.descriptor.substring(record.descriptor.indexOf(' ') + 1)"
email = "record.primaryWorkEmail"
department = "has(record.primarySupervisoryOrganization) ? record.primarySupervisoryOrganization.descriptor : ''"
title = "has(record.businessTitle) ? record.businessTitle : ''"
start_date = "has(record.hireDate) ? record.hireDate : ''"
end_date = "has(record.terminationDate) ? record.terminationDate : ''"
status = "'active'"
"#;

const REPORT_MAPPING: &str = r#"
[sources.workday.mapping]
employee_id = "record.Employee_ID"
first_name = "record.Legal_First_Name"
last_name = "record.Legal_Last_Name"
email = "record.Work_Email"
department = "has(record.Supervisory_Organization) ? record.Supervisory_Organization : ''"
start_date = "has(record.Hire_Date) ? record.Hire_Date : ''"
end_date = "has(record.Termination_Date) ? record.Termination_Date : ''"
status = "record.Active_Status == '1' ? 'active' : 'terminated'"
"#;

fn worker(id: &str, first: &str, last: &str) -> SimWorker {
    let mut w = SimWorker::new(
        id,
        first,
        last,
        &format!("{}.{id}@northwind.example", last.to_lowercase()),
    );
    w.organization = Some("Engineering".into());
    w
}

fn staff(n: usize) -> Vec<SimWorker> {
    let mut out = vec![
        worker("21001", "美咲", "佐藤"),
        worker("21002", "Zoë", "Ødegård"),
    ];
    for i in 3..=n {
        out.push(worker(&format!("21{i:03}"), "Pat", &format!("Person{i}")));
    }
    out
}

struct Rig {
    _server: accessdesk::sim::SimServer,
    sim: WorkdayHandle,
    feed: WorkdayFeed,
    rig: PollRig,
}

impl std::ops::Deref for Rig {
    type Target = PollRig;
    fn deref(&self) -> &PollRig {
        &self.rig
    }
}

fn credential(refresh: bool) -> WorkdayCredential {
    let text = if refresh {
        format!(
            r#"{{"client_id":"{DEFAULT_CLIENT_ID}","client_secret":"{DEFAULT_CLIENT_SECRET}","refresh_token":"{DEFAULT_REFRESH_TOKEN}"}}"#
        )
    } else {
        format!(
            r#"{{"client_id":"{DEFAULT_CLIENT_ID}","client_secret":"{DEFAULT_CLIENT_SECRET}"}}"#
        )
    };
    WorkdayCredential::parse(&Secret::new(text), "keyring:workday-api-client").unwrap()
}

impl Rig {
    async fn new(opts: WorkdaySimOptions, report: bool, refresh: bool) -> Rig {
        let (server, sim) = workday::spawn(opts).await.unwrap();
        let mut client = WorkdayClient::new(
            "workday",
            &sim.rest_endpoint(),
            credential(refresh),
            "keyring:workday-api-client",
            report.then_some(sim.report()),
            None,
        )
        .unwrap();
        client.set_retry(accessdesk::adapters::http::RetryPolicy {
            max_elapsed: Duration::from_secs(20),
            ..Default::default()
        });
        let text = format!(
            "[sources.workday]\nkind = \"workday\"\nbase_url = \"{}\"\ncredential = \"keyring:workday-api-client\"\n{}",
            sim.rest_endpoint(),
            if report {
                REPORT_MAPPING
            } else {
                WORKERS_MAPPING
            }
        );
        Rig {
            _server: server,
            sim,
            feed: WorkdayFeed(client),
            rig: PollRig::new(&text, "workday"),
        }
    }

    async fn workers(n: usize) -> Rig {
        let opts = WorkdaySimOptions {
            workers: staff(n),
            ..Default::default()
        };
        Rig::new(opts, false, true).await
    }

    async fn try_poll(&self, approval: Option<&str>) -> accessdesk::Result<PollReport> {
        self.rig.try_poll(&self.feed, approval).await
    }

    async fn poll(&self) -> PollReport {
        self.try_poll(None).await.unwrap()
    }

    fn changes(&self, r: &PollReport) -> Vec<String> {
        PollRig::changes(r)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workers_polls_bring_joiners_movers_and_leavers_once_each() {
    // 130 workers: two pages of /workers.
    let rig = Rig::workers(130).await;
    let today = rig.sim.today();
    let later = today + chrono::Duration::days(30);
    rig.sim.terminate("21005", later).unwrap();
    let r = rig.poll().await;
    assert_eq!((r.read, r.applied.len(), r.gone), (130, 130, 0), "{r:?}");
    assert!(r.refused.is_empty() && !r.partial, "{r:?}");
    let p = rig.person("21001").unwrap();
    assert_eq!(
        (p.given_name.as_str(), p.family_name.as_str()),
        ("美咲", "佐藤")
    );
    assert_eq!(rig.person("21002").unwrap().family_name, "Ødegård");
    // A termination entered ahead of its date: still active, the end date known.
    let p = rig.person("21005").unwrap();
    assert_eq!(
        (p.status.as_str(), p.end_date),
        ("active", Some(later)),
        "{p:?}"
    );
    assert!(
        rig.sim.count(|r| r.path.contains("/workers")) >= 2,
        "not paged"
    );

    // Nothing changed: every worker read, none applied.
    let r = rig.poll().await;
    assert_eq!(
        (r.read, r.unchanged, r.applied.len()),
        (130, 130, 0),
        "{r:?}"
    );

    // A mover and a leaver (their last day yesterday: gone from /workers).
    rig.sim
        .change("21002", |w| w.organization = Some("Finance".into()))
        .unwrap();
    rig.sim
        .terminate("21003", today - chrono::Duration::days(1))
        .unwrap();
    let r = rig.poll().await;
    assert_eq!(
        rig.changes(&r),
        vec!["21002 mover", "21003 leaver"],
        "{r:?}"
    );
    assert_eq!(r.gone, 1, "{r:?}");
    assert_eq!(rig.person("21002").unwrap().department, "Finance");
    let p = rig.person("21003").unwrap();
    assert_eq!(p.status.as_str(), "terminated");
    assert!(p.end_date.is_some_and(|d| d <= today), "{p:?}");

    // The leaver is applied once: the next polls find nothing to do.
    let r = rig.poll().await;
    assert_eq!((r.read, r.applied.len(), r.gone), (129, 0, 0), "{r:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn same_names_stay_separate_people_and_a_joiner_never_inherits_a_leaver() {
    let mut workers = staff(4);
    workers.push(worker("21100", "Alex", "Kim"));
    workers.push(worker("21101", "Alex", "Kim"));
    let rig = Rig::new(
        WorkdaySimOptions {
            workers,
            ..Default::default()
        },
        false,
        true,
    )
    .await;
    rig.poll().await;
    let (a, b) = (rig.person("21100").unwrap(), rig.person("21101").unwrap());
    assert_ne!(a.email, b.email);
    assert_eq!(rig.status("21100"), "active");

    // One Alex Kim leaves and another joins in the same poll.
    let today = rig.sim.today();
    rig.sim
        .terminate("21100", today - chrono::Duration::days(1))
        .unwrap();
    rig.sim.hire(worker("21102", "Alex", "Kim")).unwrap();
    let r = rig.poll().await;
    assert_eq!(
        rig.changes(&r),
        vec!["21100 leaver", "21102 joiner"],
        "{r:?}"
    );
    assert_eq!(rig.status("21100"), "terminated");
    assert_eq!(rig.status("21101"), "active", "the other Alex Kim left");
    let c = rig.person("21102").unwrap();
    assert_eq!(c.status.as_str(), "active");
    assert_ne!(c.email, a.email, "the joiner took the leaver's address");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_report_brings_pre_hires_and_terminations_with_their_dates() {
    let today = chrono::Utc::now().date_naive();
    let mut workers = staff(6);
    let mut pre = worker("21050", "Nia", "Okafor");
    pre.hire_date = Some(today + chrono::Duration::days(14));
    pre.worker_type = WorkerType::Contingent;
    workers.push(pre);
    workers[3].termination_date = Some(today - chrono::Duration::days(3));
    let rig = Rig::new(
        WorkdaySimOptions {
            workers,
            ..Default::default()
        },
        true,
        true,
    )
    .await;
    let r = rig.poll().await;
    assert_eq!((r.read, r.applied.len()), (7, 7), "{r:?}");
    assert!(rig.sim.count(|r| r.path.contains("customreport2")) >= 1);
    assert_eq!(rig.sim.count(|r| r.path.ends_with("/workers")), 0);
    let nia = rig.person("21050").unwrap();
    assert_eq!(nia.start_date, Some(today + chrono::Duration::days(14)));
    let gone = rig.person("21004").unwrap();
    assert_eq!(gone.status.as_str(), "terminated");
    assert_eq!(gone.end_date, Some(today - chrono::Duration::days(3)));
    // Unchanged on the next poll.
    let r = rig.poll().await;
    assert_eq!((r.unchanged, r.applied.len()), (7, 0), "{r:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_snapshot_read_while_the_tenant_changes_infers_no_leaver() {
    let opts = WorkdaySimOptions {
        workers: staff(250),
        ..Default::default()
    };
    let rig = Rig::new(opts, false, true).await;
    rig.poll().await;
    // Every page takes 40 ms; workers are hired (sorting first) every 15 ms meanwhile, so
    // the offsets shift between pages on both reads.
    let slow = |on: bool| {
        let f = rig.sim.faults();
        let mut p = f.profile();
        p.latency = on.then_some((Duration::from_millis(40), Duration::from_millis(40)));
        f.set_profile(p);
    };
    slow(true);
    let hiring = {
        let sim = rig.sim.clone();
        tokio::spawn(async move {
            for i in 0..60 {
                sim.hire(worker(&format!("20{i:03}"), "New", &format!("Hire{i}")))
                    .unwrap();
                tokio::time::sleep(Duration::from_millis(15)).await;
            }
        })
    };
    let r = rig.poll().await;
    hiring.await.unwrap();
    assert!(r.partial, "the shifting read was taken as complete: {r:?}");
    assert_eq!(r.gone, 0, "{r:?}");
    {
        let st = rig.store.lock().unwrap();
        let terminated = st
            .all_people()
            .unwrap()
            .iter()
            .filter(|p| p.status.as_str() != "active")
            .count();
        assert_eq!(terminated, 0, "a phantom leaver from a shifting read");
    }
    // Quiet again: a complete read, every hire a joiner, still no leaver.
    slow(false);
    let r = rig.poll().await;
    assert!(!r.partial, "{r:?}");
    assert_eq!(r.gone, 0);
    assert_eq!(rig.people().len(), 310);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_that_fails_keeps_everyone_and_the_next_poll_resumes() {
    let rig = Rig::workers(150).await;
    rig.poll().await;
    // The second page fails on each of the client's 5 attempts: the poll fails, and
    // nothing is inferred from the workers it did not read.
    rig.sim
        .fail(FailRule::new(None, "/workers", BodyFault::Reset, 5).with_query("offset=100"));
    let e = rig.try_poll(None).await.unwrap_err().to_string();
    assert!(e.contains("polling workday"), "{e}");
    {
        let st = rig.store.lock().unwrap();
        let people = st.all_people().unwrap();
        assert_eq!(people.len(), 150);
        assert!(people.iter().all(|p| p.status.as_str() == "active"));
        let state = st.source_state("workday").unwrap().unwrap();
        assert!(state["error"].as_str().is_some(), "{state}");
    }
    // The next poll is whole again: nothing to do.
    let r = rig.poll().await;
    assert_eq!((r.read, r.applied.len(), r.gone), (150, 0, 0), "{r:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn most_of_the_company_leaving_is_held_until_approved() {
    let rig = Rig::workers(10).await;
    rig.poll().await;
    let yesterday = rig.sim.today() - chrono::Duration::days(1);
    for i in 2..=9 {
        rig.sim.terminate(&format!("21{i:03}"), yesterday).unwrap();
    }
    let r = rig.poll().await;
    assert!(
        r.held
            .as_deref()
            .unwrap_or("")
            .contains("mass-change guard"),
        "{r:?}"
    );
    assert_eq!(
        rig.status("21002"),
        "active",
        "a held poll applied something"
    );
    let r = rig.try_poll(Some("the Lyon office closed")).await.unwrap();
    assert_eq!((r.applied.len(), r.gone), (8, 8), "{r:?}");
    assert_eq!(rig.status("21009"), "terminated");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_are_refreshed_and_a_revoked_refresh_token_is_named_not_shown() {
    let rig = Rig::workers(3).await;
    rig.poll().await;
    assert_eq!(rig.sim.tokens_issued("refresh_token"), 1);
    rig.poll().await;
    assert_eq!(
        rig.sim.tokens_issued("refresh_token"),
        1,
        "the token was not cached"
    );
    // Workday stops accepting the access token: a new one is fetched and the poll works.
    rig.sim.expire_access_tokens();
    rig.poll().await;
    assert_eq!(rig.sim.tokens_issued("refresh_token"), 2);

    rig.sim.revoke_refresh_token(DEFAULT_REFRESH_TOKEN);
    rig.sim.expire_access_tokens();
    let e = rig.try_poll(None).await.unwrap_err().to_string();
    assert!(e.contains("invalid_grant"), "{e}");
    assert!(e.contains("keyring:workday-api-client"), "{e}");
    for secret in [DEFAULT_REFRESH_TOKEN, DEFAULT_CLIENT_SECRET] {
        assert!(!e.contains(secret), "a secret in the error: {e}");
    }
    let test = rig.feed.0.test_connection().await.unwrap_err().to_string();
    assert!(test.contains("Workday refused the API client"), "{test}");

    // The client-credentials grant, for a client allowed it.
    let cc = Rig::new(
        WorkdaySimOptions {
            workers: staff(3),
            ..Default::default()
        },
        false,
        false,
    )
    .await;
    let r = cc.poll().await;
    assert_eq!(r.applied.len(), 3);
    assert_eq!(cc.sim.tokens_issued("client_credentials"), 1);
    assert_eq!(cc.sim.tokens_issued("refresh_token"), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttling_is_waited_out() {
    let opts = WorkdaySimOptions {
        workers: staff(320),
        rate_limit: 2,
        rate_window: Duration::from_secs(1),
        ..Default::default()
    };
    let rig = Rig::new(opts, false, true).await;
    let r = rig.poll().await;
    assert_eq!((r.read, r.applied.len()), (320, 320), "{r:?}");
    assert!(rig.sim.refused() > 0, "the rate limit never refused");
    assert!(
        rig.sim.requests().iter().any(|r| r.status == 429),
        "no 429 was answered"
    );
}
