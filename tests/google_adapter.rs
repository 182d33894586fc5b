//! The Google Workspace adapter against the Google Directory simulator:
//! - its whole contract through Stoplight Prism in proxy mode (`--errors`) with Google's
//!   description (`tests/specs/google/admin.directory_v1.openapi.json`): zero violations
//!   in either direction (the token endpoint is not in the description, so tokens come
//!   from the simulator directly);
//! - the engine converging at a 10% fault rate with no account or membership made twice;
//! - drift made in Google behind accessdesk's back found by reconciliation and enforced
//!   away;
//! - a revoked credential as one Unauthorized error naming the keychain entry; Google's
//!   quota 403s slowing the adapter down rather than failing it; deprecation headers
//!   reaching the API-version watch.

#[path = "common/engine.rs"]
mod engine;
#[path = "common/prism.rs"]
mod prism;
#[path = "common/reconcile.rs"]
mod reconcile;

use accessdesk::adapters::ErrorClass;
use accessdesk::adapters::google_workspace::GoogleWorkspace;
use accessdesk::adapters::http::{RateLimiter, RetryPolicy, Timeouts};
use accessdesk::adapters::kit::testkit::NamedSecrets;
use accessdesk::adapters::prelude::*;
use accessdesk::adapters::registry::AdapterContext;
use accessdesk::adapters::{AccountSpec, EntitlementTarget, collect_all};
use accessdesk::config::SystemsConfig;

use accessdesk::model::{EntitlementKind, SystemKind};
use accessdesk::sim::SimServer;
use accessdesk::sim::fault::FaultProfile;
use accessdesk::sim::google::{self, Deprecation, GoogleHandle, GoogleSimOptions};
use engine::{Entry, Run, all_and_evens, fast, person, ten_percent_faults};
use prism::PrismRig;
use std::collections::BTreeSet;
use std::path::Path;
use std::time::{Duration, SystemTime};

const SA: &str = "accessdesk@acme-iam.iam.gserviceaccount.com";
const KEY_ENTRY: &str = "google-key";

fn fixture(name: &str) -> String {
    let p = format!("{}/tests/fixtures/okta/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("reading {p}: {e}"))
}

/// The service account's JSON key as Google issues it, its token endpoint the simulator's.
fn key_file(token_base: &str) -> String {
    serde_json::json!({
        "type": "service_account",
        "client_email": SA,
        "private_key": fixture("test-rsa-private.pem"),
        "private_key_id": "k1",
        "token_uri": format!("{token_base}/token"),
    })
    .to_string()
}

async fn sim(opts: GoogleSimOptions) -> (SimServer, GoogleHandle) {
    let (server, h) = google::spawn(opts).await.expect("sim");
    h.register_service_account(
        SA,
        &fixture("test-rsa-public.pem"),
        &google_workspace_scopes(),
    );
    for g in ["everyone", "engineering", "admins"] {
        h.seed_group(&format!("{g}@example.com"), g).unwrap();
    }
    (server, h)
}

fn google_workspace_scopes() -> Vec<&'static str> {
    accessdesk::adapters::google_workspace::SCOPES.to_vec()
}

fn catalogue() -> String {
    let mut s = String::from("admin = \"accessdesk.admin@example.com\"\npage_size = 2\n");
    s.push_str("[[systems.gw.entitlements]]\nkind = \"group\"\nname = \"everyone@example.com\"\n");
    s.push_str("[[systems.gw.entitlements]]\nkind = \"group\"\nname = \"engineering@example.com\"\nrisk = \"medium\"\n");
    s.push_str("[[systems.gw.entitlements]]\nkind = \"group\"\nname = \"admins@example.com\"\nrisk = \"privileged\"\n");
    s
}

/// The adapter for `api` (the simulator, or Prism in front of it), tokens from `token_base`.
fn adapter(api: &str, token_base: &str) -> GoogleWorkspace {
    let toml = format!(
        "[systems.gw]\nkind = \"google_workspace\"\nbase_url = \"{api}\"\ncredential = \"keyring:{KEY_ENTRY}\"\n\
         [systems.gw.settings]\nadmin = \"accessdesk.admin@example.com\"\npage_size = 2\n"
    );
    let cfg = SystemsConfig::parse(Path::new("systems.toml"), &toml).unwrap();
    let secrets = NamedSecrets::one(KEY_ENTRY, &key_file(token_base));
    let mut a = GoogleWorkspace::from_context(AdapterContext {
        entry: &cfg.catalog.systems["gw"],
        secrets: &secrets,
        limiter: RateLimiter::new("gw", None, 4),
        timeouts: Timeouts::default(),
    })
    .expect("adapter");
    a.set_retry(RetryPolicy {
        max_attempts: 8,
        max_elapsed: Duration::from_secs(30),
        base: Duration::from_millis(50),
        cap: Duration::from_millis(500),
    });
    a
}

fn spec(i: usize) -> AccountSpec {
    let mut p = person(i);
    p.title = "Engineer".into();
    AccountSpec::from_person(&p, SystemKind::GoogleWorkspace)
}

fn group(email: &str) -> EntitlementTarget {
    EntitlementTarget {
        kind: EntitlementKind::Group,
        name: email.into(),
        external_id: email.into(),
    }
}

/// Every operation of the adapter's contract, with the answers checked.
async fn contract(a: &GoogleWorkspace, h: &GoogleHandle) {
    let id = a.authenticate().await.expect("authenticate");
    assert_eq!(id.scopes.len(), 3, "{id:?}");
    let ada = a.create_account(&spec(0)).await.expect("create");
    assert_eq!(ada.hris_id.as_deref(), Some("E000"));
    assert_eq!(ada.attributes["title"], "Engineer");
    assert!(ada.active);
    let again = a.create_account(&spec(0)).await.unwrap_err();
    assert_eq!(again.class, ErrorClass::Conflict, "{again}");
    for i in 1..5 {
        a.create_account(&spec(i)).await.expect("create");
    }
    let got = a
        .get_account_by_login("F0@example.com")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got.external_id, ada.external_id);
    assert!(a.get_account("nobody@example.com").await.unwrap().is_none());
    let mut moved = spec(0);
    moved
        .attributes
        .insert("department".into(), "Finance".into());
    let u = a
        .update_account(&ada.external_id, &moved)
        .await
        .expect("update");
    assert_eq!(u.attributes["department"], "Finance");

    let eng = group("engineering@example.com");
    a.add_membership(&ada.external_id, &eng)
        .await
        .expect("grant");
    a.add_membership(&ada.external_id, &eng)
        .await
        .expect("granting twice is done");
    assert_eq!(
        h.membership_adds("engineering@example.com", "f0@example.com"),
        1
    );
    let m = a.list_memberships(&ada.external_id).await.unwrap();
    assert_eq!(
        m.iter().map(|m| m.name.as_str()).collect::<Vec<_>>(),
        ["engineering@example.com"]
    );
    let members = collect_all(|c| a.list_members(&eng, c), 0).await.unwrap();
    assert_eq!(members.len(), 1);
    let groups = collect_all(|c| a.list_entitlements(c), 0).await.unwrap();
    assert_eq!(groups.len(), 3);
    // Five people and the admin, two a page.
    let accounts = collect_all(|c| a.list_accounts(c), 0).await.unwrap();
    assert_eq!(accounts.len(), 6);
    a.remove_membership(&ada.external_id, &eng)
        .await
        .expect("revoke");
    a.remove_membership(&ada.external_id, &eng)
        .await
        .expect("revoking twice is done");
    let unknown = a
        .add_membership(&ada.external_id, &group("nope@example.com"))
        .await
        .unwrap_err();
    assert_eq!(
        unknown.class,
        ErrorClass::NotFound,
        "a group that does not exist is not done"
    );

    a.deactivate_account(&ada.external_id)
        .await
        .expect("suspend");
    assert!(h.user("f0@example.com").unwrap().suspended);
    a.deactivate_account(&ada.external_id).await.expect("again");
    a.reactivate_account(&ada.external_id)
        .await
        .expect("reactivate");
    assert!(!h.user("f0@example.com").unwrap().suspended);
    a.suspend_account(&ada.external_id).await.expect("suspend");
    a.deactivate_account("404040404040404040404")
        .await
        .expect("a user who is gone is deactivated");
    assert_eq!(h.max_creates(), 1, "nothing was created twice");
}

#[test]
fn google_adapter_conforms_to_the_directory_description_through_prism() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let (server, h) = sim(GoogleSimOptions::default()).await;
        let rig = PrismRig::start(
            "google/admin.directory_v1.openapi.json",
            &server.base_url(),
            "/admin/directory/v1/users?customer=my_customer",
        )
        .await;
        let a = adapter(&rig.base(), &server.base_url());
        contract(&a, &h).await;
        let exchanges = rig.exchanges();
        let violations = rig.violations(|_| false);
        assert!(
            violations.is_empty(),
            "Prism reported {} violation(s) of Google's description:\n{}\n\nPrism log:\n{}",
            violations.len(),
            violations.join("\n"),
            rig.prism.log_tail()
        );
        let ops: BTreeSet<String> = exchanges
            .iter()
            .map(|x| {
                let p = x.path.split('?').next().unwrap_or("");
                let shape: Vec<&str> = p
                    .split('/')
                    .map(|s| {
                        if s.contains('@')
                            || s.contains("%40")
                            || s.chars().all(|c| c.is_ascii_digit()) && !s.is_empty()
                        {
                            "{key}"
                        } else {
                            s
                        }
                    })
                    .collect();
                format!("{} {}", x.method, shape.join("/"))
            })
            .collect();
        for op in [
            "POST /admin/directory/v1/users",
            "GET /admin/directory/v1/users",
            "GET /admin/directory/v1/users/{key}",
            "PATCH /admin/directory/v1/users/{key}",
            "GET /admin/directory/v1/groups",
            "POST /admin/directory/v1/groups/{key}/members",
            "GET /admin/directory/v1/groups/{key}/members",
            "DELETE /admin/directory/v1/groups/{key}/members/{key}",
        ] {
            assert!(ops.contains(op), "{op} never went through Prism: {ops:?}");
        }
        let statuses: BTreeSet<u16> = exchanges.iter().map(|x| x.status).collect();
        for s in [200, 204, 404, 409] {
            assert!(statuses.contains(&s), "no {s} was validated: {statuses:?}");
        }
        eprintln!(
            "google conformance: {} exchanges, {} operations, statuses {statuses:?}, no violations",
            exchanges.len(),
            ops.len()
        );
        rig.stop().await;
        server.stop().await;
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_credential_is_one_unauthorized_error_naming_the_keychain_entry() {
    let (server, h) = sim(GoogleSimOptions::default()).await;
    let a = adapter(&server.base_url(), &server.base_url());
    a.authenticate().await.expect("works first");
    h.revoke_access_tokens();
    h.remove_service_account(SA);
    let e = a.get_account_by_login("f0@example.com").await.unwrap_err();
    assert_eq!(e.class, ErrorClass::Unauthorized, "{e}");
    assert!(e.message.contains(&format!("keyring:{KEY_ENTRY}")), "{e}");
    assert!(
        !e.to_string().contains("BEGIN"),
        "no key material in errors: {e}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quota_403s_slow_the_adapter_down_and_deprecations_reach_the_watch() {
    let (server, h) = sim(GoogleSimOptions {
        queries_per_minute: 5,
        rate_window: Duration::from_secs(1),
        ..Default::default()
    })
    .await;
    let a = adapter(&server.base_url(), &server.base_url());
    for i in 0..8 {
        a.create_account(&spec(i))
            .await
            .expect("created despite the quota");
    }
    let refused = h.count(|r| r.status == 403);
    assert!(refused > 0, "the quota never bit");
    assert!(
        a.limiter().unwrap().snapshot().throttled > 0,
        "the limiter was not told"
    );
    let now = SystemTime::now();
    h.set_deprecation(Some(Deprecation {
        since: now,
        sunset: now + Duration::from_secs(86_400 * 180),
        link: None,
    }));
    a.get_account_by_login("f0@example.com").await.unwrap();
    let signals = a.watch().unwrap().snapshot();
    let names: Vec<&str> = signals
        .deprecations
        .iter()
        .map(|d| d.signal.as_str())
        .collect();
    assert_eq!(names, ["Deprecation", "Sunset"], "{signals:?}");
    assert!(signals.deprecations.iter().all(|d| d.date.is_some()));
    assert_eq!(
        signals.token_lifetime_secs,
        Some(3599),
        "the token's lifetime is known"
    );
    assert!(
        signals.credential_expires_at.is_none(),
        "a token's lifetime is not the key's expiry"
    );
    assert_eq!(signals.scopes_granted.as_ref().map(Vec::len), Some(3));
}

/// The engine against the simulator at a 10% fault rate: every account and membership
/// made once. Then drift made behind accessdesk's back is found and enforced away.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn converges_at_ten_percent_faults_and_drift_is_reconciled_away() {
    let faults = ten_percent_faults(21);
    let (server, h) = sim(GoogleSimOptions {
        faults,
        ..Default::default()
    })
    .await;
    let base = server.base_url();
    let mut run = Run::new(
        &[Entry::new("gw", "google_workspace", &base, KEY_ENTRY).settings(&catalogue())],
        &[(KEY_ENTRY, &key_file(&base))],
    );
    run.request_timeout = Duration::from_millis(700);
    let people = all_and_evens(
        12,
        "gw:group:everyone@example.com",
        "gw:group:engineering@example.com",
    );
    run.set_people(&people);
    let s = run.engine(fast()).run_until_idle(None).await.unwrap();
    assert_eq!(s.failed, 0, "{s:?} {:#?}", run.failed());
    assert_eq!(s.succeeded, 12 + 12 + 6, "{s:?}");
    // Most faults are absorbed by the HTTP client's retries, some by the engine's.
    let (_, injected) = h.faults().counts();
    assert!(injected > 0, "the faults did not bite");
    assert_eq!(h.max_creates(), 1, "an account was created twice");
    assert!(h.max_membership_adds() <= 1, "a membership was added twice");
    assert_eq!(h.members("engineering@example.com").len(), 6);
    run.audit_ok();

    // Quiet the faults; then drift: E001 put in admins, E000 out of engineering, a
    // hand-made account, and E003 a leaver whom Google still has active.
    h.faults().set_profile(FaultProfile::none());
    assert!(h.add_member("admins@example.com", "f1@example.com"));
    assert!(h.remove_member("engineering@example.com", "f0@example.com"));
    h.create_user_by_hand("stray@example.com", "Stray", "Account")
        .unwrap();
    reconcile::make_leaver(&run, 3);
    let (_, f) = reconcile::reconcile(&run, "gw").await;
    reconcile::assert_found(
        &f,
        &[
            ("leaver_with_access", "f3@example.com"),
            ("excess", "f1@example.com"),
            ("missing", "f0@example.com"),
            ("orphan", "stray@example.com"),
        ],
    );
    let out = reconcile::enforce_all(&run, &f);
    assert!(out.iter().any(|o| o.status == "enforced"), "{out:#?}");
    let s = run.engine(fast()).run_until_idle(None).await.unwrap();
    assert_eq!(s.failed, 0, "{s:?} {:#?}", run.failed());
    let admins = h.members("admins@example.com");
    assert!(
        admins.iter().all(|m| m.email != "f1@example.com"),
        "excess access removed"
    );
    let eng = h.members("engineering@example.com");
    assert!(
        eng.iter().any(|m| m.email == "f0@example.com"),
        "missing access restored"
    );
    assert!(
        h.user("f3@example.com").unwrap().suspended,
        "the leaver is suspended"
    );
    assert!(
        h.user("stray@example.com").unwrap().suspended,
        "the orphan is suspended"
    );
    let (_, after) = reconcile::reconcile(&run, "gw").await;
    let left: Vec<&str> = after
        .iter()
        .filter(|f| f.class != "orphan")
        .map(|f| f.class.as_str())
        .collect();
    assert!(left.is_empty(), "drift left after enforcing: {after:#?}");
}
