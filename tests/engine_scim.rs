//! The engine end to end against a real SCIM service provider (scim2-server): plan, apply,
//! workers, write-through of observed state, a leaver, faults converging through retries,
//! and a failed system blocking the systems that depend on it while the others proceed.

#[path = "common/scim_server.rs"]
mod scim_server;

use accessdesk::adapters::http::{RateLimiter, Timeouts};
use accessdesk::adapters::registry::{AdapterContext, SecretSource, build_with};
use accessdesk::config::SystemsConfig;
use accessdesk::config::systems::{CredentialRef, GuardThresholds};
use accessdesk::engine::apply::{apply_plan, make_plan};
use accessdesk::engine::plan::Scope;
use accessdesk::engine::workers::{Engine, EngineConfig, SystemRuntime};
use accessdesk::model::{EmploymentStatus, Grant, OperationStatus, Person};
use accessdesk::secrets::Secret;
use accessdesk::sim::fault::{FaultProfile, Faults, ThrottleStyle};
use accessdesk::store::Store;
use scim_server::ScimServer;
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Tokens by credential name.
struct Tokens(BTreeMap<String, String>);

impl SecretSource for Tokens {
    fn resolve(&self, cred: &CredentialRef) -> accessdesk::Result<Secret> {
        match cred {
            CredentialRef::Keyring(n) => {
                Ok(Secret::new(self.0.get(n).cloned().unwrap_or_default()))
            }
            CredentialRef::Env(_) => Ok(Secret::new("")),
        }
    }
}

fn http() -> reqwest::Client {
    accessdesk::adapters::http::install_crypto_provider();
    reqwest::Client::builder().no_proxy().build().unwrap()
}

async fn create_group(server: &ScimServer, name: &str) {
    let r = http()
        .post(format!("{}/Groups", server.base_url()))
        .bearer_auth(&server.token)
        .json(&json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": name}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 201);
}

async fn get(server: &ScimServer, path: &str) -> Value {
    http()
        .get(format!("{}{path}", server.base_url()))
        .bearer_auth(&server.token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// userName -> (active, groups it is a member of), read straight from the server.
async fn server_state(server: &ScimServer) -> BTreeMap<String, (bool, Vec<String>)> {
    let users = get(server, "/Users?count=1000").await;
    let mut by_id = HashMap::new();
    let mut out = BTreeMap::new();
    let mut names: Vec<String> = Vec::new();
    for u in users["Resources"].as_array().cloned().unwrap_or_default() {
        let name = u["userName"].as_str().unwrap().to_string();
        by_id.insert(u["id"].as_str().unwrap().to_string(), name.clone());
        names.push(name.clone());
        out.insert(name, (u["active"].as_bool().unwrap_or(true), Vec::new()));
    }
    names.sort();
    let before = names.len();
    names.dedup();
    assert_eq!(before, names.len(), "duplicate accounts on the server");
    let groups = get(server, "/Groups?count=1000").await;
    for g in groups["Resources"].as_array().cloned().unwrap_or_default() {
        let gname = g["displayName"].as_str().unwrap().to_string();
        let members: Vec<String> = g["members"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .iter()
            .map(|m| m["value"].as_str().unwrap().to_string())
            .collect();
        let mut seen = members.clone();
        seen.sort();
        seen.dedup();
        assert_eq!(seen.len(), members.len(), "duplicate members in {gname}");
        for m in members {
            if let Some(u) = by_id.get(&m)
                && let Some(e) = out.get_mut(u)
            {
                e.1.push(gname.clone());
            }
        }
    }
    for v in out.values_mut() {
        v.1.sort();
    }
    out
}

fn systems_toml(systems: &[(&str, &str, &str, &[&str])]) -> SystemsConfig {
    let mut t = String::new();
    for (name, url, cred, deps) in systems {
        let deps: Vec<String> = deps.iter().map(|d| format!("\"{d}\"")).collect();
        t.push_str(&format!(
            "[systems.{name}]\nkind = \"scim\"\nbase_url = \"{url}\"\ncredential = \"keyring:{cred}\"\ndepends_on = [{}]\nrate_limit = {{ requests_per_minute = 6000, concurrency = 4 }}\n",
            deps.join(", ")
        ));
    }
    SystemsConfig::parse(Path::new("systems.toml"), &t).unwrap()
}

fn engine(store: Arc<Mutex<Store>>, cfg: &SystemsConfig, tokens: &Tokens) -> Arc<Engine> {
    let mut systems = HashMap::new();
    for (name, entry) in &cfg.catalog.systems {
        let ctx = AdapterContext {
            entry,
            secrets: tokens,
            limiter: RateLimiter::new(name, Some(6000), 4),
            timeouts: Timeouts {
                connect: Duration::from_secs(1),
                request: Duration::from_millis(1500),
            },
        };
        let adapter = build_with(ctx).unwrap();
        systems.insert(
            name.clone(),
            SystemRuntime::new(adapter, entry.system.kind, 4, false),
        );
    }
    let cfg_e = EngineConfig {
        retry_window: Duration::from_secs(60),
        retry_base: Duration::from_millis(20),
        retry_cap: Duration::from_millis(400),
        idle_poll: Duration::from_millis(10),
        ..EngineConfig::default()
    };
    Arc::new(Engine::new(
        store,
        Arc::new(cfg.catalog.clone()),
        systems,
        cfg_e,
    ))
}

fn people(n: usize) -> Vec<Person> {
    (0..n)
        .map(|i| {
            let mut p = Person::new(
                &format!("E{i:03}"),
                &format!("Given{i}"),
                "Tester",
                &format!("p{i}@example.com"),
            );
            p.department = if i % 2 == 0 {
                "Engineering".into()
            } else {
                "Sales".into()
            };
            p
        })
        .collect()
}

fn intend(store: &Arc<Mutex<Store>>, people: &[Person], systems: &[&str]) {
    let mut s = store.lock().unwrap();
    s.write(|tx| {
        for p in people {
            tx.upsert_person(p, "test")?;
            let mut grants = Vec::new();
            for sys in systems {
                grants.push(Grant {
                    person_id: p.hris_id.clone(),
                    entitlement: format!("{sys}:group:everyone").parse().unwrap(),
                    rule: "everyone".into(),
                    requires_approval: false,
                    expires_at: None,
                });
                if p.department == "Engineering" {
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
}

fn plan_and_apply(store: &Arc<Mutex<Store>>, cfg: &SystemsConfig) -> usize {
    let mut s = store.lock().unwrap();
    let plan = make_plan(
        &mut s,
        &cfg.catalog,
        &GuardThresholds::default(),
        &Scope::default(),
        "test",
    )
    .unwrap();
    let n = plan.ops.len();
    if n > 0 {
        apply_plan(&mut s, &cfg.catalog, &plan.id, "test", None).unwrap();
    }
    n
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wave_converges_through_faults_and_a_leaver_is_deactivated() {
    let server = ScimServer::start().await;
    for g in ["everyone", "engineering"] {
        create_group(&server, g).await;
    }
    // 10% faults between the engine and the real provider.
    let faults = Faults::new(
        FaultProfile {
            timeout_delay: Duration::from_secs(3),
            ..FaultProfile::mixed(0.10, 42)
        },
        ThrottleStyle::RetryAfter429,
    );
    let proxy = accessdesk::sim::proxy::spawn(&server.origin(), faults.clone())
        .await
        .unwrap();
    let base = format!(
        "{}{}",
        proxy.base_url(),
        server.base_url().trim_start_matches(&server.origin())
    );
    let cfg = systems_toml(&[("app", &base, "app-token", &[])]);
    let tokens = Tokens([("app-token".to_string(), server.token.clone())].into());
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Mutex::new(Store::open(&dir.path().join("a.db")).unwrap()));
    let team = people(20);
    intend(&store, &team, &["app"]);

    let planned = plan_and_apply(&store, &cfg);
    assert_eq!(planned, 20 + 20 + 10);
    let summary = engine(store.clone(), &cfg, &tokens)
        .run_until_idle(None)
        .await
        .unwrap();
    assert_eq!(summary.failed, 0, "{summary:?}");
    assert_eq!(summary.succeeded, planned);
    let (_, injected) = faults.counts();
    assert!(injected > 0, "the proxy injected no faults");

    let state = server_state(&server).await;
    assert_eq!(state.len(), 20);
    assert_eq!(
        state["p0@example.com"].1,
        vec!["engineering".to_string(), "everyone".to_string()]
    );
    assert_eq!(state["p1@example.com"].1, vec!["everyone".to_string()]);
    // Observed state was written through: nothing left to plan.
    assert_eq!(plan_and_apply(&store, &cfg), 0);

    // A leaver.
    let mut leaver = team[3].clone();
    leaver.status = EmploymentStatus::Terminated;
    intend(&store, &[leaver], &[]);
    faults.set_profile(FaultProfile::none());
    // SCIM's default leaver policy also removes memberships: many SCIM apps keep
    // group-granted access for inactive users.
    assert_eq!(plan_and_apply(&store, &cfg), 2);
    let summary = engine(store.clone(), &cfg, &tokens)
        .run_until_idle(None)
        .await
        .unwrap();
    assert_eq!(summary.succeeded, 2);
    let state = server_state(&server).await;
    assert!(!state["p3@example.com"].0, "the leaver is still active");
    assert!(
        state["p3@example.com"].1.is_empty(),
        "the deactivated SCIM user kept its groups: {:?}",
        state["p3@example.com"].1
    );
    assert_eq!(plan_and_apply(&store, &cfg), 0);
    assert_eq!(
        store.lock().unwrap().audit_verify().unwrap().map(|_| ()),
        Ok(())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_system_blocks_its_dependants_and_everything_else_proceeds() {
    let good = ScimServer::start().await;
    let broken = ScimServer::start().await;
    for s in [&good, &broken] {
        for g in ["everyone", "engineering"] {
            create_group(s, g).await;
        }
    }
    // "idp" has a revoked token; "app" depends on it; "wiki" is independent.
    let tokens = Tokens(
        [
            ("idp-token".to_string(), "revoked".to_string()),
            ("good-token".to_string(), good.token.clone()),
        ]
        .into(),
    );
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Mutex::new(Store::open(&dir.path().join("a.db")).unwrap()));
    let team = people(4);
    intend(&store, &team, &["idp", "app"]);
    // A third, independent system on the good server under another name.
    let wiki_cfg = systems_toml(&[
        ("idp", &broken.base_url(), "idp-token", &[]),
        ("app", &good.base_url(), "good-token", &["idp"]),
        ("wiki", &good.base_url(), "good-token", &[]),
    ]);
    let wiki_people: Vec<Person> = (10..12)
        .map(|i| {
            Person::new(
                &format!("W{i}"),
                "Wiki",
                "User",
                &format!("w{i}@example.com"),
            )
        })
        .collect();
    intend(&store, &wiki_people, &["wiki"]);
    plan_and_apply(&store, &wiki_cfg);
    let summary = engine(store.clone(), &wiki_cfg, &tokens)
        .run_until_idle(None)
        .await
        .unwrap();
    // idp: 4 creations fail (Unauthorized, not retried); app: its 4 creations and 6
    // memberships are blocked with the reason; wiki: everything succeeds.
    assert_eq!(summary.failed, 4, "{summary:?}");
    assert_eq!(summary.succeeded, 2 + 2, "{summary:?}");
    let (blocked, failed) = {
        let s = store.lock().unwrap();
        (
            s.ops_with_status(&[OperationStatus::Blocked], 100).unwrap(),
            s.ops_with_status(&[OperationStatus::Failed], 100).unwrap(),
        )
    };
    assert_eq!(blocked.len(), 4 + 6 + 4 + 2, "{blocked:#?}");
    let reason = blocked
        .iter()
        .find(|o| o.system == "app")
        .unwrap()
        .blocked_reason
        .clone()
        .unwrap();
    assert!(
        reason.contains("which failed") && reason.contains("idp"),
        "{reason}"
    );
    assert!(
        failed
            .iter()
            .all(|o| o.last_error_class.as_deref() == Some("unauthorized"))
    );
    assert!(
        failed[0]
            .last_error_message
            .as_deref()
            .unwrap()
            .contains("keyring:idp-token"),
        "{:?}",
        failed[0].last_error_message
    );
    let state = server_state(&good).await;
    assert!(state.contains_key("w10@example.com") && state.contains_key("w11@example.com"));
    assert!(
        !state.contains_key("p0@example.com"),
        "a blocked operation ran"
    );

    // The admin fixes the root cause (the idp credential) and retries the whole group:
    // the failed operations and everything blocked behind them run to completion.
    let key = {
        let s = store.lock().unwrap();
        let groups = accessdesk::engine::admin::failure_groups(&s).unwrap();
        assert_eq!(groups.len(), 1, "one root cause");
        let (rc, ops) = groups.into_iter().next().unwrap();
        assert_eq!(ops.len(), 4);
        assert_eq!(
            (rc.system.as_str(), rc.class.as_str()),
            ("idp", "unauthorized")
        );
        rc.key()
    };
    let retried = {
        let mut s = store.lock().unwrap();
        accessdesk::engine::admin::act_on_group(
            &mut s,
            &key,
            accessdesk::engine::admin::Action::Retry,
            "cli:admin",
            "token rotated",
        )
        .unwrap()
    };
    assert_eq!(retried, 4);
    let fixed = Tokens(
        [
            ("idp-token".to_string(), broken.token.clone()),
            ("good-token".to_string(), good.token.clone()),
        ]
        .into(),
    );
    let summary = engine(store.clone(), &wiki_cfg, &fixed)
        .run_until_idle(None)
        .await
        .unwrap();
    assert_eq!(summary.failed, 0, "{summary:?}");
    assert_eq!(summary.succeeded, 4 + 6 + 4 + 6, "{summary:?}");
    assert!(server_state(&good).await.contains_key("p0@example.com"));
    let s = store.lock().unwrap();
    let audit = s.audit_events(None, None).unwrap();
    assert!(
        audit
            .iter()
            .any(|e| e.actor == "cli:admin" && e.details["why"] == "token rotated")
    );
}
