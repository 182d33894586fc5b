//! The engine against three Okta simulators injecting 5% 503s, 429 bursts and timeouts,
//! with one system down for a while: everything converges, the down system's work
//! completes once it returns, the simulators count no duplicate accounts or memberships,
//! and every failed attempt is recorded with its cause. Plus eventual consistency:
//! writes verified by polling, and "not observed after N s" when they never show.

use accessdesk::adapters::http::{RateLimiter, Timeouts};
use accessdesk::adapters::registry::{AdapterContext, SecretSource, build_with};
use accessdesk::config::SystemsConfig;
use accessdesk::config::systems::{CredentialRef, GuardThresholds};
use accessdesk::engine::apply::{apply_plan, make_plan};
use accessdesk::engine::plan::Scope;
use accessdesk::engine::workers::{Engine, EngineConfig, SystemRuntime};
use accessdesk::model::{Grant, OperationStatus, Person};
use accessdesk::secrets::Secret;
use accessdesk::sim::SimServer;
use accessdesk::sim::fault::FaultProfile;
use accessdesk::sim::okta::{OktaHandle, OktaSimOptions, spawn};
use accessdesk::store::Store;
use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

const TOKEN: &str = "00sim-engine-token";

struct Token;
impl SecretSource for Token {
    fn resolve(&self, _cred: &CredentialRef) -> accessdesk::Result<Secret> {
        Ok(Secret::new(TOKEN))
    }
}

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

fn config(systems: &[(&str, &str, &[&str], bool)]) -> SystemsConfig {
    let mut t = String::new();
    for (name, url, deps, verify) in systems {
        let deps: Vec<String> = deps.iter().map(|d| format!("\"{d}\"")).collect();
        t.push_str(&format!(
            "[systems.{name}]\nkind = \"okta\"\nbase_url = \"{url}\"\ncredential = \"keyring:okta-token\"\ndepends_on = [{}]\nverify = {verify}\n",
            deps.join(", ")
        ));
    }
    SystemsConfig::parse(Path::new("systems.toml"), &t).unwrap()
}

fn engine(store: Arc<Mutex<Store>>, cfg: &SystemsConfig, ec: EngineConfig) -> Arc<Engine> {
    let mut systems = HashMap::new();
    for (name, entry) in &cfg.catalog.systems {
        let ctx = AdapterContext {
            entry,
            secrets: &Token,
            limiter: RateLimiter::new(name, None, 4),
            timeouts: Timeouts {
                connect: Duration::from_millis(500),
                request: Duration::from_millis(700),
            },
        };
        systems.insert(
            name.clone(),
            SystemRuntime::new(build_with(ctx).unwrap(), entry.system.kind, 4, entry.verify),
        );
    }
    Arc::new(Engine::new(
        store,
        Arc::new(cfg.catalog.clone()),
        systems,
        ec,
    ))
}

fn fast() -> EngineConfig {
    EngineConfig {
        retry_window: Duration::from_secs(90),
        retry_base: Duration::from_millis(50),
        retry_cap: Duration::from_millis(600),
        verify_deadline: Duration::from_secs(10),
        verify_poll: Duration::from_millis(200),
        idle_poll: Duration::from_millis(10),
        ..EngineConfig::default()
    }
}

fn intend(store: &Arc<Mutex<Store>>, n: usize, systems: &[&str]) {
    let mut s = store.lock().unwrap();
    s.write(|tx| {
        for i in 0..n {
            let mut p = Person::new(
                &format!("E{i:03}"),
                &format!("Given{i}"),
                "Faulty",
                &format!("f{i}@example.com"),
            );
            p.department = if i % 2 == 0 {
                "Engineering".into()
            } else {
                "Sales".into()
            };
            tx.upsert_person(&p, "test")?;
            let mut grants = Vec::new();
            for sys in systems {
                grants.push(Grant {
                    person_id: p.hris_id.clone(),
                    entitlement: format!("{sys}:group:everyone").parse().unwrap(),
                    rule: "everyone".into(),
                    requires_approval: false,
                    expires_at: None,
                });
                if i % 2 == 0 {
                    grants.push(Grant {
                        person_id: p.hris_id.clone(),
                        entitlement: format!("{sys}:group:engineering").parse().unwrap(),
                        rule: "eng".into(),
                        requires_approval: false,
                        expires_at: None,
                    });
                }
            }
            tx.replace_intended_grants(&p.hris_id, &grants, "test")?;
        }
        Ok(())
    })
    .unwrap();
    let cfg_catalog = accessdesk::config::Catalog::default();
    let plan = make_plan(
        &mut s,
        &cfg_catalog,
        &GuardThresholds::default(),
        &Scope::default(),
        "test",
    )
    .unwrap();
    apply_plan(&mut s, &cfg_catalog, &plan.id, "test", None).unwrap();
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
    let cfg = config(&[
        ("idp", &idp_s.base_url(), &[], false),
        ("app", &app_s.base_url(), &["idp"], false),
        ("chat", &chat_s.base_url(), &["idp"], false),
    ]);
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Mutex::new(Store::open(&dir.path().join("a.db")).unwrap()));
    intend(&store, 30, &["idp", "app", "chat"]);

    // chat is down for the first three seconds.
    chat.faults().set_down(true);
    let chat_faults = chat.faults();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(3)).await;
        chat_faults.set_down(false);
    });
    let summary = engine(store.clone(), &cfg, fast())
        .run_until_idle(None)
        .await
        .unwrap();
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
    let s = store.lock().unwrap();
    let (n, unexplained): (i64, i64) = s
        .conn()
        .query_row(
            "SELECT count(*), sum(error_class IS NULL OR message IS NULL OR message = '') FROM op_attempts WHERE outcome = 'retry'",
            [],
            |r| Ok((r.get(0)?, r.get::<_, Option<i64>>(1)?.unwrap_or(0))),
        )
        .unwrap();
    assert!(n > 0);
    assert_eq!(unexplained, 0);
    let chat_retries: i64 = s
        .conn()
        .query_row("SELECT count(*) FROM op_attempts a JOIN operations o ON o.id = a.op_id WHERE o.system = 'chat' AND a.http_status = 503", [], |r| r.get(0))
        .unwrap();
    assert!(chat_retries > 0, "the outage left no trace");
    assert_eq!(s.audit_verify().unwrap().map(|_| ()), Ok(()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eventually_consistent_writes_are_verified_or_fail_with_the_reason() {
    let (slow_s, slow) = sim(FaultProfile {
        visibility_delay: Duration::from_millis(800),
        ..FaultProfile::none()
    })
    .await;
    let cfg = config(&[("slow", &slow_s.base_url(), &[], true)]);
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Mutex::new(Store::open(&dir.path().join("a.db")).unwrap()));
    intend(&store, 4, &["slow"]);
    let summary = engine(store.clone(), &cfg, fast())
        .run_until_idle(None)
        .await
        .unwrap();
    assert_eq!(summary.failed, 0, "{summary:?}");
    assert_eq!(summary.succeeded, 4 + 4 + 2);
    let verified: i64 = store
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
    let cfg = config(&[("never", &never_s.base_url(), &[], true)]);
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Mutex::new(Store::open(&dir.path().join("a.db")).unwrap()));
    intend(&store, 1, &["never"]);
    let ec = EngineConfig {
        verify_deadline: Duration::from_secs(1),
        ..fast()
    };
    let summary = engine(store.clone(), &cfg, ec)
        .run_until_idle(None)
        .await
        .unwrap();
    assert!(summary.failed >= 1, "{summary:?}");
    let failed = store
        .lock()
        .unwrap()
        .ops_with_status(&[OperationStatus::Failed], 10)
        .unwrap();
    assert!(
        failed
            .iter()
            .any(|o| o.last_error_message.as_deref() == Some("not observed after 1 s")),
        "{failed:#?}"
    );
}
