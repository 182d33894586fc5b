//! The Entra ID adapter against the Graph simulator (whose answers `tests/sim_entra.rs`
//! checks against Graph's CSDL): the whole contract, a revoked secret as one Unauthorized
//! error naming its keychain entry, the secret's end date reaching credential hygiene,
//! Graph's 429s waited out, the engine converging at a 10% fault rate with nothing made
//! twice, and drift made behind accessdesk's back found and enforced away.

#[path = "common/engine.rs"]
mod engine;
#[path = "common/reconcile.rs"]
mod reconcile;

use accessdesk::adapters::entra::{Entra, ROLES};
use accessdesk::adapters::http::{RateLimiter, RetryPolicy, Timeouts};
use accessdesk::adapters::kit::testkit::NamedSecrets;
use accessdesk::adapters::prelude::*;
use accessdesk::adapters::registry::AdapterContext;
use accessdesk::adapters::{AccountSpec, EntitlementTarget, ErrorClass, collect_all};
use accessdesk::config::SystemsConfig;

use accessdesk::model::{EntitlementKind, SystemKind};
use accessdesk::sim::SimServer;
use accessdesk::sim::entra::{self, EntraHandle, EntraSimOptions};
use accessdesk::sim::fault::FaultProfile;
use engine::{Entry, Run, fast, person, ten_percent_faults};
use std::path::Path;
use std::time::Duration;

const CLIENT: &str = "11111111-2222-3333-4444-555555555555";
const SECRET: &str = "q~Zsim-client-secret-value";

async fn sim(opts: EntraSimOptions) -> (SimServer, EntraHandle) {
    let (server, h) = entra::spawn(opts).await.unwrap();
    let mut roles = ROLES.to_vec();
    roles.push("Application.Read.All");
    h.register_app(CLIENT, SECRET, &roles);
    for g in ["everyone", "engineering", "admins"] {
        h.seed_group(g, g, None).unwrap();
    }
    (server, h)
}

fn settings(base: &str, h: &EntraHandle) -> String {
    format!(
        "tenant_id = \"{t}\"\nclient_id = \"{CLIENT}\"\ntoken_url = \"{base}/{t}/oauth2/v2.0/token\"\npage_size = 2\n",
        t = h.tenant_id()
    )
}

fn adapter(base: &str, h: &EntraHandle) -> Entra {
    let toml = format!(
        "[systems.aad]\nkind = \"entra\"\nbase_url = \"{base}/v1.0\"\ncredential = \"keyring:entra-secret\"\n[systems.aad.settings]\n{}",
        settings(base, h)
    );
    let cfg = SystemsConfig::parse(Path::new("systems.toml"), &toml).unwrap();
    let secrets = NamedSecrets::one("entra-secret", SECRET);
    let mut a = Entra::from_context(AdapterContext {
        entry: &cfg.catalog.systems["aad"],
        secrets: &secrets,
        limiter: RateLimiter::new("aad", None, 4),
        timeouts: Timeouts::default(),
    })
    .unwrap();
    a.set_retry(RetryPolicy {
        max_attempts: 8,
        max_elapsed: Duration::from_secs(30),
        base: Duration::from_millis(50),
        cap: Duration::from_millis(500),
    });
    a
}

fn group(name: &str) -> EntitlementTarget {
    EntitlementTarget {
        kind: EntitlementKind::Group,
        name: name.into(),
        external_id: name.into(),
    }
}

fn spec(i: usize) -> AccountSpec {
    let mut p = person(i);
    p.title = "Engineer".into();
    AccountSpec::from_person(&p, SystemKind::Entra)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_whole_contract_and_the_secrets_end_date() {
    let (server, h) = sim(EntraSimOptions::default()).await;
    let end = chrono::Utc::now() + chrono::Duration::days(10);
    assert!(h.set_secret_end(CLIENT, end));
    let a = adapter(&server.base_url(), &h);
    a.authenticate().await.expect("token and a read");
    let s = a.watch().unwrap().snapshot();
    assert!(
        s.credential_expires_at.is_some(),
        "the secret's end date is known: {s:?}"
    );
    assert_eq!(
        s.credential_expiry_source.as_deref(),
        Some("Entra application secret endDateTime")
    );

    let ada = a.create_account(&spec(0)).await.expect("create");
    assert_eq!(ada.hris_id.as_deref(), Some("E000"));
    assert_eq!(ada.attributes["title"], "Engineer");
    let dup = a.create_account(&spec(0)).await.unwrap_err();
    assert_eq!(dup.class, ErrorClass::Conflict, "{dup}");
    for i in 1..5 {
        a.create_account(&spec(i)).await.unwrap();
    }
    let got = a
        .get_account_by_login("f0@example.com")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got.external_id, ada.external_id);
    assert!(
        a.get_account("00000000-0000-0000-0000-000000000000")
            .await
            .unwrap()
            .is_none()
    );
    let mut moved = spec(0);
    moved
        .attributes
        .insert("department".into(), "Finance".into());
    assert_eq!(
        a.update_account(&ada.external_id, &moved)
            .await
            .unwrap()
            .attributes["department"],
        "Finance"
    );

    let eng = group("engineering");
    a.add_membership(&ada.external_id, &eng)
        .await
        .expect("grant");
    a.add_membership(&ada.external_id, &eng)
        .await
        .expect("granting twice is done");
    assert_eq!(h.membership_adds("engineering", "f0@example.com"), 1);
    let members = collect_all(|c| a.list_members(&eng, c), 0).await.unwrap();
    assert_eq!(
        members.iter().map(|m| m.login.as_str()).collect::<Vec<_>>(),
        ["f0@example.com"]
    );
    let m = a.list_memberships(&ada.external_id).await.unwrap();
    assert_eq!(
        m.iter().map(|m| m.name.as_str()).collect::<Vec<_>>(),
        ["engineering"]
    );
    assert_eq!(
        collect_all(|c| a.list_accounts(c), 0).await.unwrap().len(),
        5,
        "two a page"
    );
    assert_eq!(
        collect_all(|c| a.list_entitlements(c), 0)
            .await
            .unwrap()
            .len(),
        3
    );
    a.remove_membership(&ada.external_id, &eng)
        .await
        .expect("revoke");
    a.remove_membership(&ada.external_id, &eng)
        .await
        .expect("revoking twice is done");
    a.deactivate_account(&ada.external_id).await.unwrap();
    assert!(!h.user("f0@example.com").unwrap().account_enabled);
    a.reactivate_account(&ada.external_id).await.unwrap();
    assert!(h.user("f0@example.com").unwrap().account_enabled);
    a.deactivate_account("00000000-0000-0000-0000-000000000000")
        .await
        .expect("a user who is gone is deactivated");
    assert_eq!(h.max_creates(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_secret_names_the_keychain_entry_and_429s_are_waited_out() {
    let (server, h) = sim(EntraSimOptions {
        requests_per_window: 6,
        rate_window: Duration::from_secs(1),
        ..Default::default()
    })
    .await;
    let a = adapter(&server.base_url(), &h);
    // Three 429s for certain (the window may or may not fill, depending on the machine's
    // speed), then the window's own.
    h.faults().throttle_next(3);
    for i in 0..8 {
        a.create_account(&spec(i))
            .await
            .expect("created despite throttling");
    }
    assert!(h.count(|r| r.status == 429) >= 3, "Graph never throttled");
    assert_eq!(h.max_creates(), 1, "nobody created twice");
    h.revoke_tokens();
    h.register_app(CLIENT, "another-secret", &ROLES);
    let e = a.get_account_by_login("f0@example.com").await.unwrap_err();
    assert_eq!(e.class, ErrorClass::Unauthorized, "{e}");
    assert!(e.message.contains("keyring:entra-secret"), "{e}");
    assert!(!e.to_string().contains(SECRET), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn converges_at_ten_percent_faults_and_drift_is_reconciled_away() {
    let faults = ten_percent_faults(31);
    let (server, h) = sim(EntraSimOptions {
        faults,
        ..Default::default()
    })
    .await;
    let base = server.base_url();
    let catalogue = format!(
        "{}[[systems.aad.entitlements]]\nkind = \"group\"\nname = \"everyone\"\n\
         [[systems.aad.entitlements]]\nkind = \"group\"\nname = \"engineering\"\n\
         [[systems.aad.entitlements]]\nkind = \"group\"\nname = \"admins\"\nrisk = \"privileged\"\n",
        settings(&base, &h)
    );
    let mut run = Run::new(
        &[
            Entry::new("aad", "entra", &format!("{base}/v1.0"), "entra-secret")
                .settings(&catalogue),
        ],
        &[("entra-secret", SECRET)],
    );
    run.request_timeout = Duration::from_millis(700);
    run.intend(12, &["aad"]);
    let s = run.engine(fast()).run_until_idle(None).await.unwrap();
    assert_eq!(s.failed, 0, "{s:?} {:#?}", run.failed());
    assert_eq!(s.succeeded, 12 + 12 + 6, "{s:?}");
    let (_, injected) = h.faults().counts();
    assert!(injected > 0, "the faults did not bite");
    assert_eq!(h.max_creates(), 1, "a user was created twice");
    assert!(h.max_membership_adds() <= 1, "a membership was added twice");
    run.audit_ok();

    h.faults().set_profile(FaultProfile::none());
    assert!(h.add_member("admins", "f1@example.com"));
    assert!(h.remove_member("engineering", "f0@example.com"));
    h.create_user_by_hand("stray@example.com", "Stray Account")
        .unwrap();
    reconcile::make_leaver(&run, 3);
    let (_, f) = reconcile::reconcile(&run, "aad").await;
    reconcile::assert_found(
        &f,
        &[
            ("leaver_with_access", "f3@example.com"),
            ("excess", "f1@example.com"),
            ("missing", "f0@example.com"),
            ("orphan", "stray@example.com"),
        ],
    );
    reconcile::enforce_all(&run, &f);
    let s = run.engine(fast()).run_until_idle(None).await.unwrap();
    assert_eq!(s.failed, 0, "{s:?} {:#?}", run.failed());
    assert!(
        !h.members("admins").contains(&"f1@example.com".to_string()),
        "excess removed"
    );
    assert!(
        h.members("engineering")
            .contains(&"f0@example.com".to_string()),
        "missing restored"
    );
    assert!(
        !h.user("f3@example.com").unwrap().account_enabled,
        "the leaver is disabled"
    );
    assert!(
        !h.user("stray@example.com").unwrap().account_enabled,
        "the orphan is disabled"
    );
}
