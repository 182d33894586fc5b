//! The Slack adapter against the Slack simulator: its channel contract through Stoplight
//! Prism in proxy mode (`--errors`) with Slack's Web API description
//! (`tests/specs/slack/slack_web_openapi_v2_without_examples.json`), zero violations; the
//! user lifecycle over SCIM (the SCIM side is the SCIM simulator, checked by scim2-tester
//! elsewhere); Slack's HTTP-200 failures classified; a revoked token named by its
//! keychain entry; tier 429s waited out; and the engine provisioning then reconciling
//! channel drift away.

#[path = "common/engine.rs"]
mod engine;
#[path = "common/prism.rs"]
mod prism;
#[path = "common/reconcile.rs"]
mod reconcile;

use accessdesk::adapters::http::{RateLimiter, Timeouts};
use accessdesk::adapters::kit::testkit::NamedSecrets;
use accessdesk::adapters::prelude::*;
use accessdesk::adapters::registry::AdapterContext;
use accessdesk::adapters::slack::SlackAdapter;
use accessdesk::adapters::{AccountSpec, EntitlementTarget, ErrorClass, collect_all};
use accessdesk::config::SystemsConfig;

use accessdesk::model::{EntitlementKind, SystemKind};
use accessdesk::sim::SimServer;
use accessdesk::sim::fault::FaultProfile;
use accessdesk::sim::scim::ScimSimOptions;
use accessdesk::sim::slack::{self, SlackHandle, SlackSimOptions};
use engine::{Entry, Run, all_and_evens, fast, person, ten_percent_faults};
use prism::PrismRig;
use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

const BOT: &str = "xoxb-test-bot-token";
const USER: &str = "xoxp-test-scim-token";

/// The simulator: the Web API under /api and SCIM under /scim/v2, on one server.
async fn sim(opts: SlackSimOptions) -> (SimServer, SlackHandle) {
    let (web, h) = slack::spawn(opts).await.unwrap();
    h.add_token(BOT, &accessdesk::adapters::slack::SCOPES);
    h.scim.add_token(USER);
    for (c, private) in [("general", false), ("eng", false), ("leadership", true)] {
        h.seed_channel(c, private);
    }
    (web, h)
}

fn settings(scim_base: &str) -> String {
    format!("scim_url = \"{scim_base}/scim/v2\"\nscim_credential = \"keyring:slack-scim\"\n")
}

fn adapter(web: &str, scim_base: &str, bot: &str) -> SlackAdapter {
    let toml = format!(
        "[systems.chat]\nkind = \"slack\"\nbase_url = \"{web}\"\ncredential = \"keyring:slack-bot\"\n[systems.chat.settings]\n{}",
        settings(scim_base)
    );
    let cfg = SystemsConfig::parse(Path::new("systems.toml"), &toml).unwrap();
    let secrets = NamedSecrets::new_many(&[("slack-bot", bot), ("slack-scim", USER)]);
    SlackAdapter::from_context(AdapterContext {
        entry: &cfg.catalog.systems["chat"],
        secrets: &secrets,
        limiter: RateLimiter::new("chat", None, 4),
        timeouts: Timeouts::default(),
    })
    .unwrap()
}

fn channel(name: &str) -> EntitlementTarget {
    EntitlementTarget {
        kind: EntitlementKind::Channel,
        name: name.into(),
        external_id: name.into(),
    }
}

fn spec(i: usize) -> AccountSpec {
    AccountSpec::from_person(&person(i), SystemKind::Slack)
}

/// The contract. `a` goes through Prism and sees only successes; `d` goes to the
/// simulator directly for the failures, because Slack answers them with HTTP 200 while
/// its description declares them as `default` responses: Prism would hold every one of
/// them against the success schema. Their bodies are checked against each method's
/// `default` schema by [`check_error_body`] instead.
async fn contract(
    a: &SlackAdapter,
    d: &SlackAdapter,
    h: &SlackHandle,
) -> Vec<(String, serde_json::Value)> {
    let id = a.authenticate().await.expect("auth.test");
    assert_eq!(id.scopes.len(), 5, "{id:?}");
    let ada = a.create_account(&spec(0)).await.expect("create over SCIM");
    assert!(ada.external_id.starts_with('U'), "{ada:?}");
    let bob = a.create_account(&spec(1)).await.unwrap();
    let eng = channel("eng");
    a.add_membership(&ada.external_id, &eng)
        .await
        .expect("invite");
    a.add_membership(&bob.external_id, &channel("leadership"))
        .await
        .unwrap();
    let members = collect_all(|c| a.list_members(&eng, c), 0).await.unwrap();
    assert_eq!(
        members.iter().map(|m| m.login.as_str()).collect::<Vec<_>>(),
        ["f0@example.com"]
    );
    let m = a.list_memberships(&ada.external_id).await.unwrap();
    assert!(
        m.iter()
            .any(|m| m.kind == EntitlementKind::Channel && m.name == "eng"),
        "{m:?}"
    );
    let chans = collect_all(|c| a.list_entitlements(c), 0).await.unwrap();
    assert_eq!(chans.len(), 3);
    a.remove_membership(&ada.external_id, &eng)
        .await
        .expect("kick");
    a.deactivate_account(&bob.external_id)
        .await
        .expect("deactivate over SCIM");
    assert!(
        !a.get_account(&bob.external_id)
            .await
            .unwrap()
            .unwrap()
            .active
    );

    // Failures, straight to the simulator.
    h.set_member("eng", &ada.external_id, true);
    d.add_membership(&ada.external_id, &eng)
        .await
        .expect("already_in_channel is done");
    assert_eq!(
        h.invites(&h.channel("eng").unwrap().id, &ada.external_id),
        1
    );
    let e = d
        .add_membership(&ada.external_id, &channel("nope"))
        .await
        .unwrap_err();
    assert_eq!(e.class, ErrorClass::NotFound, "{e}");
    let e = d.add_membership("UNOSUCHUSER", &eng).await.unwrap_err();
    assert_eq!(e.class, ErrorClass::NotFound, "{e}");
    assert_eq!(e.vendor_code.as_deref(), Some("user_not_found"));
    d.remove_membership(&ada.external_id, &eng).await.unwrap();
    d.remove_membership(&ada.external_id, &eng)
        .await
        .expect("not_in_channel is done");
    // What the simulator answered to each failure, for the schema check.
    let mut bodies = Vec::new();
    for (method, body) in h.web_failures() {
        bodies.push((method, body));
    }
    bodies
}

/// A failure's body against the method's `default` response schema in Slack's
/// description: `ok: false`, an `error` from the method's enum, no other properties than
/// the schema's.
fn check_error_body(spec: &serde_json::Value, method: &str, body: &serde_json::Value) {
    let op = spec["paths"][format!("/{method}")]
        .as_object()
        .and_then(|m| m.values().next())
        .unwrap_or_else(|| panic!("{method} is not in Slack's description"));
    let schema = &op["responses"]["default"]["schema"];
    assert_eq!(body["ok"], false, "{method}: {body}");
    let error = body["error"].as_str().unwrap_or("");
    let allowed = schema["properties"]["error"]["enum"].as_array().unwrap();
    assert!(
        allowed.iter().any(|e| e == error),
        "{method}: {error:?} is not among {allowed:?}"
    );
    for key in body.as_object().unwrap().keys() {
        assert!(
            schema["properties"].get(key).is_some(),
            "{method}: {key} is not in the error schema"
        );
    }
}

#[test]
fn slack_channels_conform_to_the_web_api_description_through_prism() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let (web, h) = sim(SlackSimOptions::default()).await;
        let rig = PrismRig::start(
            "slack/slack_web_openapi_v2_without_examples.json",
            &web.base_url(),
            "/auth.test",
        )
        .await;
        let a = adapter(&rig.base(), &web.base_url(), BOT);
        let d = adapter(&format!("{}/api", web.base_url()), &web.base_url(), BOT);
        let failures = contract(&a, &d, &h).await;
        let spec: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(prism::spec_path(
                "slack/slack_web_openapi_v2_without_examples.json",
            ))
            .unwrap(),
        )
        .unwrap();
        let seen: BTreeSet<String> = failures
            .iter()
            .map(|(_, b)| b["error"].as_str().unwrap_or("").to_string())
            .collect();
        for want in ["already_in_channel", "not_in_channel", "user_not_found"] {
            assert!(seen.contains(want), "{want} was never answered: {seen:?}");
        }
        for (method, body) in &failures {
            check_error_body(&spec, method, body);
        }
        let exchanges = rig.exchanges();
        let violations = rig.violations(|_| false);
        assert!(
            violations.is_empty(),
            "Prism reported {} violation(s) of Slack's description:\n{}\n\nPrism log:\n{}",
            violations.len(),
            violations.join("\n"),
            rig.prism.log_tail()
        );
        let methods: BTreeSet<String> = exchanges
            .iter()
            .map(|x| {
                x.path
                    .split('?')
                    .next()
                    .unwrap_or("")
                    .trim_start_matches("/api")
                    .trim_start_matches('/')
                    .to_string()
            })
            .collect();
        for m in [
            "auth.test",
            "conversations.invite",
            "conversations.kick",
            "conversations.list",
            "conversations.members",
            "users.conversations",
        ] {
            assert!(
                methods.contains(m),
                "{m} never went through Prism: {methods:?}"
            );
        }
        eprintln!(
            "slack conformance: {} exchanges, methods {methods:?}, no violations",
            exchanges.len()
        );
        rig.stop().await;
        web.stop().await;
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_bot_token_is_unauthorized_and_tier_limits_are_waited_out() {
    // A window long enough that six invites exceed Tier 3's three however slow the
    // machine is.
    let (web, h) = sim(SlackSimOptions {
        rate_window: Duration::from_secs(3),
        tiers: (2, 3, 5),
        ..Default::default()
    })
    .await;
    let a = adapter(&format!("{}/api", web.base_url()), &web.base_url(), BOT);
    let mut ids = Vec::new();
    for i in 0..6 {
        ids.push(a.create_account(&spec(i)).await.unwrap().external_id);
    }
    for id in &ids {
        a.add_membership(id, &channel("general"))
            .await
            .expect("invited despite the tier");
    }
    assert!(h.count(|r| r.status == 429) > 0, "the tier never bit");
    h.revoke_token(BOT);
    let e = a
        .add_membership(&ids[0], &channel("eng"))
        .await
        .unwrap_err();
    assert_eq!(e.class, ErrorClass::Unauthorized, "{e}");
    assert!(e.message.contains("keyring:slack-bot"), "{e}");
    assert!(!e.to_string().contains(BOT), "{e}");
}

/// An engine run against the simulator's two sides, with three channels catalogued.
fn run_for(web: &SimServer) -> Run {
    let catalogue = format!(
        "{}[[systems.chat.entitlements]]\nkind = \"channel\"\nname = \"general\"\n\
         [[systems.chat.entitlements]]\nkind = \"channel\"\nname = \"eng\"\n\
         [[systems.chat.entitlements]]\nkind = \"channel\"\nname = \"leadership\"\nrisk = \"privileged\"\n",
        settings(&web.base_url())
    );
    Run::new(
        &[Entry::new(
            "chat",
            "slack",
            &format!("{}/api", web.base_url()),
            "slack-bot",
        )
        .settings(&catalogue)],
        &[("slack-bot", BOT), ("slack-scim", USER)],
    )
}

/// The engine at a 10% fault rate on both of Slack's sides (SCIM in the SCIM style, the
/// Web API in Slack's: 429 `ratelimited`, HTTP 200 `internal_error`): every account and
/// channel membership made once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn converges_at_ten_percent_faults_on_both_sides() {
    let (web, h) = sim(SlackSimOptions {
        scim: ScimSimOptions {
            faults: ten_percent_faults(41),
            ..Default::default()
        },
        web_faults: ten_percent_faults(42),
        ..Default::default()
    })
    .await;
    let mut run = run_for(&web);
    run.request_timeout = Duration::from_millis(700);
    run.set_people(&all_and_evens(
        12,
        "chat:channel:general",
        "chat:channel:eng",
    ));
    let s = run.engine(fast()).run_until_idle(None).await.unwrap();
    assert_eq!(s.failed, 0, "{s:?} {:#?}", run.failed());
    assert_eq!(s.succeeded, 12 + 12 + 6, "{s:?}");
    let (_, scim_faults) = h.scim.faults().counts();
    let (_, web_faults) = h.web_faults().counts();
    assert!(
        scim_faults > 0 && web_faults > 0,
        "the faults did not bite: SCIM {scim_faults}, Web API {web_faults}"
    );
    assert_eq!(
        h.scim.max_creates_per_user(),
        1,
        "an account was created twice"
    );
    assert_eq!(
        h.max_invites(),
        1,
        "someone was invited into a channel twice"
    );
    assert_eq!(
        h.channel("eng").unwrap().members.len(),
        1 + 6,
        "the bot and six"
    );
    run.audit_ok();
    // What a server error looks like on the Web API side: HTTP 200, `ok: false`,
    // `internal_error`, which is transient (the engine retried it above).
    h.web_faults().set_profile(FaultProfile {
        error_5xx_rate: 1.0,
        ..FaultProfile::none()
    });
    let a = adapter(&format!("{}/api", web.base_url()), &web.base_url(), BOT);
    let id = h.scim.user_by_name("f1@example.com").unwrap().id;
    let e = a.add_membership(&id, &channel("eng")).await.unwrap_err();
    assert_eq!(e.class, ErrorClass::Transient, "{e}");
    assert!(e.message.contains("internal_error"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_engine_provisions_channels_and_reconciliation_enforces_drift_away() {
    let (web, h) = sim(SlackSimOptions::default()).await;
    let run = run_for(&web);
    let people = all_and_evens(6, "chat:channel:general", "chat:channel:eng");
    run.set_people(&people);
    let s = run.engine(fast()).run_until_idle(None).await.unwrap();
    assert_eq!(s.failed, 0, "{s:?} {:#?}", run.failed());
    assert_eq!(s.succeeded, 6 + 6 + 3, "{s:?}");
    let uid = |login: &str| h.scim.user_by_name(login).unwrap().id;
    // Behind our back: f1 into #leadership, f0 out of #eng.
    assert!(h.set_member("leadership", &uid("f1@example.com"), true));
    assert!(h.set_member("eng", &uid("f0@example.com"), false));
    let (_, f) = reconcile::reconcile(&run, "chat").await;
    reconcile::assert_found(
        &f,
        &[("excess", "f1@example.com"), ("missing", "f0@example.com")],
    );
    reconcile::enforce_all(&run, &f);
    let s = run.engine(fast()).run_until_idle(None).await.unwrap();
    assert_eq!(s.failed, 0, "{s:?} {:#?}", run.failed());
    assert!(
        !h.channel("leadership")
            .unwrap()
            .members
            .contains(&uid("f1@example.com"))
    );
    assert!(
        h.channel("eng")
            .unwrap()
            .members
            .contains(&uid("f0@example.com"))
    );
}
