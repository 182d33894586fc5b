//! Reconciliation against the Okta simulator: drift made behind accessdesk's back (a
//! privileged group added by hand, a membership removed by hand, an account nobody owns,
//! a leaver still active) is observed, classified as exactly those findings, becomes
//! work in the next plan, and enforcing the findings brings Okta back to intended.

#[path = "common/engine.rs"]
mod engine;
#[path = "common/reconcile.rs"]
mod reconcile;

use accessdesk::engine::findings;
use accessdesk::model::EmploymentStatus;
use accessdesk::sim::SimServer;
use accessdesk::sim::okta::{ADMIN_LOGIN, OktaHandle, OktaSimOptions, spawn};
use accessdesk::store::reconcile::FindingFilter;
use engine::{Entry, Run, fast, person};
use reconcile::summary;
use std::time::Duration;

const TOKEN: &str = "00sim-reconcile-token";

async fn sim() -> (SimServer, OktaHandle) {
    let (server, handle) = spawn(OktaSimOptions {
        rate_window: Duration::from_secs(2),
        rate_limit: Some(400),
        ..Default::default()
    })
    .await
    .unwrap();
    handle.add_api_token(TOKEN);
    for g in ["everyone", "engineering", "admins"] {
        handle.seed_group(g);
    }
    (server, handle)
}

fn catalogue() -> &'static str {
    r#"
[[systems.okta.entitlements]]
kind = "group"
name = "everyone"
[[systems.okta.entitlements]]
kind = "group"
name = "engineering"
risk = "medium"
[[systems.okta.entitlements]]
kind = "group"
name = "admins"
risk = "privileged"
"#
}

async fn okta_put(base: &str, path: &str, method: reqwest::Method) {
    okta_call(base, path, method, None).await
}

async fn okta_call(
    base: &str,
    path: &str,
    method: reqwest::Method,
    body: Option<serde_json::Value>,
) {
    let mut req = reqwest::Client::new()
        .request(method, format!("{base}{path}"))
        .header("Authorization", format!("SSWS {TOKEN}"))
        .header("Accept", "application/json");
    if let Some(b) = body {
        req = req.json(&b);
    }
    let r = req.send().await.unwrap();
    assert!(r.status().is_success(), "{path}: {}", r.status());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drift_made_behind_our_back_is_found_planned_and_enforced() {
    let (server, okta) = sim().await;
    let base = server.base_url();
    let run = Run::new(
        &[Entry::new("okta", "okta", &base, "okta-token").settings(catalogue())],
        &[("okta-token", TOKEN)],
    );
    run.intend(4, &["okta"]);
    let s = run.engine(fast()).run_until_idle(None).await.unwrap();
    assert_eq!(s.failed, 0, "{s:?}");

    // Right after provisioning, only the API's own admin user is nobody's.
    let (_, f) = reconcile::reconcile(&run, "okta").await;
    assert_eq!(
        summary(&f),
        vec![("orphan".into(), None, Some(ADMIN_LOGIN.into()), None)],
        "{f:#?}"
    );
    assert_eq!(run.plan_apply(), 0, "observed reality matches the plan");

    // Behind accessdesk's back: a privileged group for E001, E000 loses engineering, a
    // hand-made account, and E003 leaves in HR while Okta still has them active.
    let uid = |login: &str| okta.user_by_login(login).unwrap().id;
    let gid = |name: &str| okta.group_by_name(name).unwrap().id;
    okta_put(
        &base,
        &format!(
            "/api/v1/groups/{}/users/{}",
            gid("admins"),
            uid("f1@example.com")
        ),
        reqwest::Method::PUT,
    )
    .await;
    okta_put(
        &base,
        &format!(
            "/api/v1/groups/{}/users/{}",
            gid("engineering"),
            uid("f0@example.com")
        ),
        reqwest::Method::DELETE,
    )
    .await;
    okta.seed_user("stray@example.com", "Stray", "Account");
    okta.seed_user("claimed@example.com", "Claimed", "Later");
    // E002's department edited in Okta; E001 put in a group the catalogue does not list.
    okta_call(
        &base,
        &format!("/api/v1/users/{}", uid("f2@example.com")),
        reqwest::Method::POST,
        Some(serde_json::json!({"profile": {"department": "Finance"}})),
    )
    .await;
    let contractors = okta.seed_group("contractors");
    okta_put(
        &base,
        &format!(
            "/api/v1/groups/{contractors}/users/{}",
            uid("f1@example.com")
        ),
        reqwest::Method::PUT,
    )
    .await;
    {
        let mut leaver = person(3);
        leaver.status = EmploymentStatus::Terminated;
        run.store
            .lock()
            .unwrap()
            .write(|tx| tx.upsert_person(&leaver, "test"))
            .unwrap();
    }

    let (_, f) = reconcile::reconcile(&run, "okta").await;
    let got = summary(&f);
    let want = vec![
        (
            "leaver_with_access".to_string(),
            Some("E003".to_string()),
            Some("f3@example.com".to_string()),
            None,
        ),
        (
            "excess".into(),
            Some("E001".into()),
            Some("f1@example.com".into()),
            Some("okta:group:admins".into()),
        ),
        ("orphan".into(), None, Some(ADMIN_LOGIN.into()), None),
        (
            "orphan".into(),
            None,
            Some("claimed@example.com".into()),
            None,
        ),
        (
            "orphan".into(),
            None,
            Some("stray@example.com".into()),
            None,
        ),
        (
            "unmanaged".into(),
            Some("E001".into()),
            Some("f1@example.com".into()),
            Some("okta:group:contractors".into()),
        ),
        (
            "missing".into(),
            Some("E000".into()),
            Some("f0@example.com".into()),
            Some("okta:group:engineering".into()),
        ),
        (
            "attribute_drift".into(),
            Some("E002".into()),
            Some("f2@example.com".into()),
            None,
        ),
    ];
    assert_eq!(got, want, "{f:#?}");
    assert_eq!(f[0].severity, "critical");
    assert_eq!(f[1].severity, "critical", "excess privileged access");

    // Enforce everything; unmanaged access is refused with what to do instead.
    let out = {
        let mut s = run.store.lock().unwrap();
        findings::enforce(&mut s, &run.cfg.catalog, &f, "test").unwrap()
    };
    let enforced: Vec<&str> = out
        .iter()
        .filter(|o| o.status == "enforced")
        .map(|o| o.class.as_str())
        .collect();
    assert_eq!(
        enforced,
        vec![
            "leaver_with_access",
            "excess",
            "orphan",
            "orphan",
            "orphan",
            "missing",
            "attribute_drift"
        ],
        "{out:#?}"
    );
    let drift = f.iter().find(|f| f.class == "attribute_drift").unwrap();
    assert!(
        drift
            .detail
            .contains("department: target \"Finance\", HR \"Engineering\""),
        "{drift:?}"
    );
    let refused: Vec<&findings::Outcome> = out.iter().filter(|o| o.status != "enforced").collect();
    assert_eq!(refused.len(), 1, "{out:#?}");
    assert_eq!(refused[0].class, "unmanaged");
    assert!(
        refused[0]
            .note
            .as_deref()
            .unwrap_or("")
            .contains("never changes it"),
        "{refused:?}"
    );
    // Before the engine runs, the claimed account proves to be E002's (someone typed
    // their HR id into it): its deactivation must not run.
    okta_call(
        &base,
        &format!("/api/v1/users/{}", uid("claimed@example.com")),
        reqwest::Method::POST,
        Some(serde_json::json!({"profile": {"employeeNumber": "E002"}})),
    )
    .await;
    let s = run.engine(fast()).run_until_idle(None).await.unwrap();
    assert_eq!(s.failed, 0, "{s:?}");
    // The stray account is deactivated, not deleted; the claimed one and the API's own
    // admin are left active, each cancelled with the reason.
    assert_eq!(
        okta.user_by_login("stray@example.com").unwrap().status,
        "DEPROVISIONED"
    );
    assert_eq!(
        okta.user_by_login("claimed@example.com").unwrap().status,
        "ACTIVE"
    );
    assert_eq!(okta.user_by_login(ADMIN_LOGIN).unwrap().status, "ACTIVE");
    let cancelled: Vec<String> = {
        let s = run.store.lock().unwrap();
        s.conn()
            .prepare(
                "SELECT details FROM audit_events WHERE action = 'op.status' AND details LIKE '%\"to\":\"cancelled\"%' ORDER BY seq",
            )
            .unwrap()
            .query_map([], |r| r.get::<_, String>(0))
            .unwrap()
            .map(|r| r.unwrap())
            .collect()
    };
    assert_eq!(cancelled.len(), 2, "{cancelled:?}");
    assert!(
        cancelled
            .iter()
            .any(|m| m.contains("own credentials act as")),
        "{cancelled:?}"
    );
    assert!(
        cancelled
            .iter()
            .any(|m| m.contains("no longer an orphan") && m.contains("E002")),
        "{cancelled:?}"
    );

    // Okta is back to intended.
    let members = |g: &str| okta.members(&gid(g));
    assert!(!members("admins").contains(&uid("f1@example.com")));
    assert!(members("engineering").contains(&uid("f0@example.com")));
    assert_ne!(
        okta.user_by_login("f3@example.com").unwrap().status,
        "ACTIVE"
    );
    let e2 = okta.user_by_login("f2@example.com").unwrap();
    assert_eq!(e2.profile["department"], "Engineering", "{e2:?}");
    // Unmanaged access is never touched.
    assert!(members("contractors").contains(&uid("f1@example.com")));
    let (_, f) = reconcile::reconcile(&run, "okta").await;
    // The claimed account now carries E002's HR id while E002 has an account already:
    // two accounts claim one person, reported and never merged.
    assert_eq!(
        summary(&f),
        vec![
            ("orphan".into(), None, Some(ADMIN_LOGIN.into()), None),
            (
                "unmanaged".into(),
                Some("E001".into()),
                Some("f1@example.com".into()),
                Some("okta:group:contractors".into()),
            ),
            (
                "ambiguous".into(),
                None,
                Some("claimed@example.com".into()),
                None
            ),
        ],
        "{f:#?}"
    );

    // Accepting the admin as an exception keeps it out of the open findings of later
    // runs until the exception expires.
    {
        let mut s = run.store.lock().unwrap();
        findings::accept(
            &mut s,
            &f[0..1],
            "break-glass account",
            "2099-12-31",
            "test",
        )
        .unwrap();
    }
    let (run_id, f) = reconcile::reconcile(&run, "okta").await;
    assert_eq!(f.len(), 2, "{f:#?}");
    let all = run
        .store
        .lock()
        .unwrap()
        .findings(&FindingFilter {
            run: Some(run_id),
            ..Default::default()
        })
        .unwrap();
    let admin = all
        .iter()
        .find(|f| f.account.as_deref() == Some(ADMIN_LOGIN))
        .unwrap();
    assert_eq!(admin.status, "accepted");
    assert_eq!(admin.reason.as_deref(), Some("break-glass account"));
    run.audit_ok();
}

/// A read cut off halfway (every attempt at one page of a group's members loses its
/// connection) concludes nothing about what it did not read, and the next observe resumes
/// at that page without reading anything before it again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_cut_off_halfway_draws_no_conclusion_and_resumes_at_that_page() {
    use accessdesk::engine::observe::observe_system;
    use accessdesk::sim::rules::{BodyFault, FailRule};

    let (server, okta) = sim().await;
    let base = server.base_url();
    let run = Run::new(
        &[Entry::new("okta", "okta", &base, "okta-token")
            .settings(&format!("page_size = 2\n{}", catalogue()))],
        &[("okta-token", TOKEN)],
    );
    // 12 people: everyone in `everyone`, the 6 even ones in `engineering` (3 pages of 2).
    run.intend(12, &["okta"]);
    let s = run.engine(fast()).run_until_idle(None).await.unwrap();
    assert_eq!(s.failed, 0, "{s:?}");
    let eng = okta.group_by_name("engineering").unwrap().id;
    let members_path = format!("/api/v1/groups/{eng}/users");
    // The 2nd page of engineering's members never answers while the rule is in place.
    okta.fail(
        FailRule::new(
            Some(reqwest::Method::GET),
            &members_path,
            BodyFault::Reset,
            1,
        )
        .on_nth(2)
        .always(),
    );
    let engine = run.engine(fast());
    let adapter = engine.adapter("okta").unwrap().clone();
    let entry = run.cfg.catalog.systems["okta"].clone();
    let id = reconcile::start_run(&run, "okta");
    let read = observe_system(&run.store, &adapter, &entry, id, &|_| {})
        .await
        .unwrap();
    assert!(!read.complete, "{read:?}");
    assert!(
        read.error.as_deref().unwrap_or("").contains("transient"),
        "{read:?}"
    );
    {
        let (r, f) = reconcile::finish_and_reconcile(&run, id, false);
        assert!(!r.complete);
        // engineering was half read: nobody is reported missing from it, and the
        // accounts on its unread page are not reported as anything.
        assert!(
            !f.iter()
                .any(|f| f.class == "missing" || f.class == "excess"),
            "{f:#?}"
        );
        // The plan is unchanged by a partial read: nothing to do.
        assert_eq!(run.plan_apply(), 0);
    }
    // Again, with the connection back: the read resumes at the page it stopped on.
    okta.clear_rules();
    okta.clear_log();
    let read = observe_system(&run.store, &adapter, &entry, id, &|_| {})
        .await
        .unwrap();
    assert!(read.complete, "{read:?}");
    let log = okta.log();
    let first = log.first().expect("requests");
    assert_eq!(
        first.path, members_path,
        "resumed where it stopped: {log:?}"
    );
    assert!(
        first.query.contains("after="),
        "from that page's cursor: {first:?}"
    );
    assert_eq!(
        log.iter().filter(|r| r.path == "/api/v1/users").count(),
        0,
        "the accounts are not read again"
    );
    assert_eq!(
        read.memberships,
        12 + 6,
        "every membership exactly once: {read:?}"
    );
    let (r, f) = reconcile::finish_and_reconcile(&run, id, true);
    assert!(r.complete);
    assert_eq!(
        summary(&f),
        vec![(
            "orphan".to_string(),
            None,
            Some(ADMIN_LOGIN.to_string()),
            None
        )],
        "{f:#?}"
    );
}

/// An account deleted while a read was under way (after the account listing, before its
/// groups were read) is asked about, found gone and left out: no "missing membership"
/// for it, and the person is reported as having no account, which is now the truth. An
/// account in no group that still exists is kept (the admin remains an orphan).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_account_that_vanishes_during_the_read_draws_no_false_finding() {
    // f1 is in no group the read reached before it was deleted.
    vanish_while_reading("admins", "f1@example.com", "E001").await;
}

/// Deleted after one of its groups was read (engineering) and before the next
/// (everyone): its absence from the later group is not a membership it lacks.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_account_deleted_between_its_groups_draws_no_false_finding() {
    vanish_while_reading("everyone", "f0@example.com", "E000").await;
}

/// The read stops at `stop_at`'s members; meanwhile `login` (person `person`) is deleted
/// in Okta; the resumed read completes. Its only finding about the person is that they
/// have no account.
async fn vanish_while_reading(stop_at: &str, login: &str, person: &str) {
    use accessdesk::engine::observe::observe_system;
    use accessdesk::sim::rules::{BodyFault, FailRule};

    let (server, okta) = sim().await;
    let base = server.base_url();
    let run = Run::new(
        &[Entry::new("okta", "okta", &base, "okta-token").settings(catalogue())],
        &[("okta-token", TOKEN)],
    );
    run.intend(4, &["okta"]);
    let s = run.engine(fast()).run_until_idle(None).await.unwrap();
    assert_eq!(s.failed, 0, "{s:?}");
    // The read stops at that group's members...
    let stop = okta.group_by_name(stop_at).unwrap().id;
    okta.fail(
        FailRule::new(
            Some(reqwest::Method::GET),
            &format!("/api/v1/groups/{stop}/users"),
            BodyFault::Reset,
            1,
        )
        .always(),
    );
    let engine = run.engine(fast());
    let adapter = engine.adapter("okta").unwrap().clone();
    let entry = run.cfg.catalog.systems["okta"].clone();
    let id = reconcile::start_run(&run, "okta");
    let read = observe_system(&run.store, &adapter, &entry, id, &|_| {})
        .await
        .unwrap();
    assert!(!read.complete, "{read:?}");
    // ...and meanwhile someone deletes the account (listed already) in Okta.
    let gone = okta.user_by_login(login).unwrap().id;
    let path = format!("/api/v1/users/{gone}");
    okta_put(
        &base,
        &format!("{path}/lifecycle/deactivate"),
        reqwest::Method::POST,
    )
    .await;
    okta_put(&base, &path, reqwest::Method::DELETE).await;
    okta.clear_rules();
    let read = observe_system(&run.store, &adapter, &entry, id, &|_| {})
        .await
        .unwrap();
    assert!(read.complete, "{read:?}");
    assert_eq!(read.accounts, 4, "5 listed, 1 gone: {read:?}");
    let (_, f) = reconcile::finish_and_reconcile(&run, id, true);
    assert_eq!(
        summary(&f),
        vec![
            reconcile::seen("orphan", None, Some(ADMIN_LOGIN), None),
            reconcile::seen("missing", Some(person), None, None),
        ],
        "{f:#?}"
    );
    assert!(f[1].detail.contains("has no account"), "{:?}", f[1].detail);
}
