//! The Reconcile view's jobs against the SCIM simulator, through a real engine: an
//! observation session reports progress per system and reconciles the run; a leaver's
//! finding is enforced (operations queued), and an orphan's: the engine deactivates the
//! account nobody owns; enforcing it again is refused, saying it already was.

#[path = "common/engine.rs"]
mod engine;

use accessdesk::model::EmploymentStatus;
use accessdesk::store::Store;
use accessdesk::store::reconcile::FindingFilter;
use accessdesk::tui::core::Backend;
use accessdesk::tui::core::reconcile::{observe, remediate};
use accessdesk::tui::reducer::Msg;
use accessdesk::tui::state::FindingVerb;
use engine::{Entry, Run, fast};
use std::sync::Arc;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_observes_reconciles_and_remediates_through_its_jobs() {
    let (_server, handle) = accessdesk::sim::scim::spawn(Default::default())
        .await
        .expect("the SCIM simulator starts");
    let token = "console-e2e-token";
    handle.add_token(token);
    let base = handle.base_url();
    let run = Run::new(
        &[Entry::new("app", "scim", &base, "app-token").settings(
            "[[systems.app.entitlements]]\nkind = \"group\"\nname = \"everyone\"\n\
             [[systems.app.entitlements]]\nkind = \"group\"\nname = \"engineering\"\n",
        )],
        &[("app-token", token)],
    );
    run.intend(3, &["app"]);
    let engine = run.engine(fast());
    engine.run_until_idle(None).await.unwrap();
    // Behind accessdesk's back: an account nobody in HR owns. In HR: a leaver.
    accessdesk::adapters::http::install_crypto_provider();
    let r = reqwest::Client::builder()
        .no_proxy()
        .build()
        .unwrap()
        .post(format!("{base}/Users"))
        .bearer_auth(token)
        .json(&serde_json::json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "userName": "ghost@elsewhere.example",
            "active": true
        }))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.status());
    let db = {
        let mut s = run.store.lock().unwrap();
        let mut leaver = engine::person(0);
        leaver.status = EmploymentStatus::Terminated;
        s.write(|tx| tx.upsert_person(&leaver, "test")).unwrap();
        s.path().to_path_buf()
    };
    let backend = Backend {
        db_path: db.clone(),
        catalog: Arc::new(run.cfg.catalog.clone()),
        policies: None,
        engine: Some(engine.clone()),
        probe: None,
        notices: Vec::new(),
        actor: "console-test".into(),
        theme_dir: None,
        feed: None,
    };

    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let said = observe(&backend, None, Some(tx)).await.unwrap();
    assert!(said.contains("1 of 1 system(s) read in full"), "{said}");
    let mut progress = Vec::new();
    let mut events = Vec::new();
    while let Ok(m) = rx.try_recv() {
        match m {
            Msg::Progress(p) => progress.push(p),
            Msg::Event(e) => events.push(e),
            _ => {}
        }
    }
    assert!(
        events.iter().any(|e| e.contains("started: app")),
        "{events:?}"
    );
    assert_eq!(progress.last().map(|p| p.phase.as_str()), Some("done"));
    assert!(progress.iter().all(|p| p.system == "app"));

    let store = Store::open(&db).unwrap();
    let latest = store.latest_run().unwrap();
    let findings = store
        .findings(&FindingFilter {
            run: latest,
            ..Default::default()
        })
        .unwrap();
    let of = |class: &str| -> Vec<i64> {
        findings
            .iter()
            .filter(|f| f.class == class)
            .map(|f| f.id)
            .collect()
    };
    let leaver = of("leaver_with_access");
    let orphan = of("orphan");
    assert!(!leaver.is_empty(), "{findings:#?}");
    assert_eq!(orphan.len(), 1, "{findings:#?}");

    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let mut ids = leaver.clone();
    ids.extend(&orphan);
    let said = remediate(&backend, ids, FindingVerb::Enforce, None, None, Some(tx))
        .await
        .unwrap();
    assert!(said.contains("queued #"), "{said}");
    assert!(!said.contains("left as they were"), "{said}");
    assert!(rx.try_recv().is_err(), "nothing was refused");
    let after = store
        .findings(&FindingFilter {
            id: Some(leaver[0]),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(after[0].status, "enforced");
    assert_eq!(after[0].decided_by.as_deref(), Some("console-test"));
    // The engine carries it out: the orphan is deactivated in the target, not deleted.
    engine.run_until_idle(None).await.unwrap();
    let ghost: serde_json::Value = reqwest::Client::builder()
        .no_proxy()
        .build()
        .unwrap()
        .get(format!("{base}/Users"))
        .query(&[("filter", "userName eq \"ghost@elsewhere.example\"")])
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(ghost["totalResults"], 1, "{ghost}");
    assert_eq!(ghost["Resources"][0]["active"], false, "{ghost}");
    // Enforcing it again is refused with the reason.
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let said = remediate(
        &backend,
        orphan.clone(),
        FindingVerb::Enforce,
        None,
        None,
        Some(tx),
    )
    .await
    .unwrap();
    assert!(said.contains("1 left as they were"), "{said}");
    let mut refusals = Vec::new();
    while let Ok(Msg::Event(e)) = rx.try_recv() {
        refusals.push(e);
    }
    assert!(
        refusals.iter().any(|e| e.contains("already enforced")),
        "{refusals:?}"
    );
}
