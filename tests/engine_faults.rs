//! The engine against three Okta simulators injecting 5% 503s, 429 bursts and timeouts,
//! with one system down for a while: everything converges, the down system's work
//! completes once it returns, the simulators count no duplicate accounts or memberships,
//! and every failed attempt is recorded with its cause. Plus eventual consistency:
//! writes verified by polling, and "not observed after N s" when they never show.

#[path = "common/engine.rs"]
mod engine;

use accessdesk::engine::workers::EngineConfig;
use accessdesk::sim::SimServer;
use accessdesk::sim::fault::FaultProfile;
use accessdesk::sim::okta::{OktaHandle, OktaSimOptions, spawn};
use engine::{Entry, Run, fast};
use std::time::Duration;

const TOKEN: &str = "00sim-engine-token";

async fn sim(faults: FaultProfile) -> (SimServer, OktaHandle) {
    let (server, handle) = spawn(OktaSimOptions {
        faults,
        rate_window: Duration::from_secs(2),
        rate_limit: Some(400),
        ..Default::default()
    })
    .await
    .unwrap();
    handle.add_api_token(TOKEN);
    for g in ["everyone", "engineering"] {
        handle.seed_group(g);
    }
    (server, handle)
}

/// Okta systems (name, base_url, depends_on, verify), all with the same token, and an
/// engine whose adapters time out after 700 ms.
fn run(systems: &[(&str, &str, &[&str], bool)]) -> Run {
    let entries: Vec<Entry> = systems
        .iter()
        .map(|(name, url, deps, verify)| {
            Entry::new(name, "okta", url, "okta-token")
                .depends_on(deps)
                .verify(*verify)
        })
        .collect();
    let mut run = Run::new(&entries, &[("okta-token", TOKEN)]);
    run.request_timeout = Duration::from_millis(700);
    run
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn converges_through_faults_and_an_outage_without_duplicates() {
    let faults = FaultProfile {
        error_5xx_rate: 0.05,
        burst_429_rate: 0.01,
        burst_429_len: 3,
        burst_retry_after_secs: 1,
        timeout_rate: 0.01,
        timeout_delay: Duration::from_secs(2),
        seed: 11,
        ..FaultProfile::none()
    };
    let (idp_s, idp) = sim(faults.clone()).await;
    let (app_s, app) = sim(FaultProfile {
        seed: 12,
        ..faults.clone()
    })
    .await;
    let (chat_s, chat) = sim(FaultProfile { seed: 13, ..faults }).await;
    let run = run(&[
        ("idp", &idp_s.base_url(), &[], false),
        ("app", &app_s.base_url(), &["idp"], false),
        ("chat", &chat_s.base_url(), &["idp"], false),
    ]);
    run.intend(30, &["idp", "app", "chat"]);

    // chat is down for the first three seconds.
    chat.faults().set_down(true);
    let chat_faults = chat.faults();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(3)).await;
        chat_faults.set_down(false);
    });
    let summary = run.engine(fast()).run_until_idle(None).await.unwrap();
    assert_eq!(summary.failed, 0, "{summary:?}");
    assert_eq!(summary.succeeded, 3 * (30 + 30 + 15), "{summary:?}");
    assert!(summary.retried > 0, "no retries: the faults did not bite");

    for (name, h) in [("idp", &idp), ("app", &app), ("chat", &chat)] {
        let (_, injected) = h.faults().counts();
        assert!(injected > 0, "{name}: no faults injected");
        let people = h
            .users()
            .iter()
            .filter(|u| u.login().starts_with('f'))
            .count();
        assert_eq!(people, 30, "{name}");
        assert_eq!(
            h.max_creates_per_login(),
            1,
            "{name}: an account was created twice"
        );
        assert!(
            h.max_membership_adds() <= 1,
            "{name}: a membership was added twice"
        );
        let eng = h.group_by_name("engineering").unwrap();
        assert_eq!(h.members(&eng.id).len(), 15, "{name}");
    }
    // Every retried attempt is on record with its cause.
    run.audit_ok();
    let s = run.store.lock().unwrap();
    let n: i64 = s
        .conn()
        .query_row(
            "SELECT count(*) FROM op_attempts WHERE outcome = 'retry'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(n > 0);
    let chat_retries: i64 = s
        .conn()
        .query_row("SELECT count(*) FROM op_attempts a JOIN operations o ON o.id = a.op_id WHERE o.system = 'chat' AND a.http_status = 503", [], |r| r.get(0))
        .unwrap();
    assert!(chat_retries > 0, "the outage left no trace");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eventually_consistent_writes_are_verified_or_fail_with_the_reason() {
    let (slow_s, slow) = sim(FaultProfile {
        visibility_delay: Duration::from_millis(800),
        ..FaultProfile::none()
    })
    .await;
    let slow_run = run(&[("slow", &slow_s.base_url(), &[], true)]);
    slow_run.intend(4, &["slow"]);
    let summary = slow_run.engine(fast()).run_until_idle(None).await.unwrap();
    assert_eq!(summary.failed, 0, "{summary:?}");
    assert_eq!(summary.succeeded, 4 + 4 + 2);
    let verified: i64 = slow_run
        .store
        .lock()
        .unwrap()
        .conn()
        .query_row("SELECT count(*) FROM audit_events WHERE action = 'op.status' AND json_extract(details, '$.to') = 'verifying'", [], |r| r.get(0))
        .unwrap();
    assert_eq!(verified, 6, "memberships did not go through verifying");
    let eng = slow.group_by_name("engineering").unwrap();
    assert_eq!(slow.members(&eng.id).len(), 2);

    // A change that never becomes visible within the deadline fails with the reason.
    let (never_s, _never) = sim(FaultProfile {
        visibility_delay: Duration::from_secs(30),
        ..FaultProfile::none()
    })
    .await;
    let never_run = run(&[("never", &never_s.base_url(), &[], true)]);
    never_run.intend(1, &["never"]);
    let ec = EngineConfig {
        verify_deadline: Duration::from_secs(1),
        ..fast()
    };
    let summary = never_run.engine(ec).run_until_idle(None).await.unwrap();
    assert!(summary.failed >= 1, "{summary:?}");
    let failed = never_run.failed();
    assert!(
        failed
            .iter()
            .any(|o| o.last_error_message.as_deref() == Some("not observed after 1 s")),
        "{failed:#?}"
    );
}
