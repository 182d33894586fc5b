//! The GitHub adapter against the GitHub simulator: its contract through Stoplight Prism
//! in proxy mode (`--errors`) with GitHub's REST description (two narrow, documented
//! gaps, as in tests/sim_github.rs: a 422 GitHub sends passes through Prism, and GitHub's
//! undeclared 404 for an unknown user on PUT membership); an invitation as its own
//! pending state; someone already in the organisation never adopted as a new account; a
//! revoked token named by its keychain entry; the token's expiry reaching hygiene; and the
//! engine inviting people into teams, then reconciling team drift away; a GitHub App's
//! JWT exchanged for installation tokens (through Prism too) and renewed after a 401; and
//! the engine converging at a 10% fault rate, lost answers included.

#[path = "common/engine.rs"]
mod engine;
#[path = "common/prism.rs"]
mod prism;
#[path = "common/reconcile.rs"]
mod reconcile;

use accessdesk::adapters::github::GitHub;
use accessdesk::adapters::http::{RateLimiter, Timeouts};
use accessdesk::adapters::kit::testkit::NamedSecrets;
use accessdesk::adapters::prelude::*;
use accessdesk::adapters::registry::AdapterContext;
use accessdesk::adapters::{AccountSpec, EntitlementTarget, ErrorClass, collect_all};
use accessdesk::config::SystemsConfig;

use accessdesk::model::{EntitlementKind, SystemKind};
use accessdesk::sim::SimServer;
use accessdesk::sim::github::{self, GitHubHandle, GitHubSimOptions, OrgRole, TokenInfo};
use accessdesk::sim::rules::{BodyFault, FailRule};
use axum::http::Method;
use engine::{Entry, Run, all_and_evens, fast, person, ten_percent_faults};
use prism::{Exchange, PrismRig};
use serde_json::Value;
use std::path::Path;
use std::time::Duration;

const TOKEN: &str = "ghp_testtokenforaccessdesk000000000000";

async fn sim() -> (SimServer, GitHubHandle) {
    let (server, h) = github::spawn(GitHubSimOptions::default()).await.unwrap();
    h.add_token(
        TOKEN,
        TokenInfo {
            scopes: vec!["admin:org".into()],
            expires_at: Some(chrono::Utc::now() + chrono::Duration::days(5)),
            login: github::ADMIN_LOGIN.into(),
        },
    );
    for i in 0..8 {
        h.seed_user(&format!("f{i}"), 1000 + i as u64, None)
            .unwrap();
    }
    h.seed_user("octo-stranger", 99, None).unwrap();
    for t in ["everyone", "engineering", "admins"] {
        h.seed_team(t).unwrap();
    }
    (server, h)
}

fn adapter(base: &str) -> GitHub {
    try_adapter(base, "", "gh-token", TOKEN).unwrap()
}

fn try_adapter(base: &str, extra: &str, entry: &str, secret: &str) -> accessdesk::Result<GitHub> {
    let toml = format!(
        "[systems.gh]\nkind = \"github\"\nbase_url = \"{base}\"\ncredential = \"keyring:{entry}\"\n[systems.gh.settings]\norg = \"acme\"\npage_size = 2\n{extra}"
    );
    let cfg = SystemsConfig::parse(Path::new("systems.toml"), &toml).unwrap();
    GitHub::from_context(AdapterContext {
        entry: &cfg.catalog.systems["gh"],
        secrets: &NamedSecrets::one(entry, secret),
        limiter: RateLimiter::new("gh", None, 4),
        timeouts: Timeouts::default(),
    })
}

const APP_ID: u64 = 314;

fn fixture(name: &str) -> String {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/okta");
    std::fs::read_to_string(dir.join(name)).expect("test key")
}

/// The adapter as GitHub App [`APP_ID`], its private key in `keyring:gh-app-key`.
fn app_adapter(base: &str, installation: u64, key: &str) -> accessdesk::Result<GitHub> {
    let settings = format!("app_id = {APP_ID}\ninstallation_id = {installation}\n");
    try_adapter(base, &settings, "gh-app-key", &fixture(key))
}

fn team(slug: &str) -> EntitlementTarget {
    EntitlementTarget {
        kind: EntitlementKind::Team,
        name: slug.into(),
        external_id: slug.into(),
    }
}

fn spec(i: usize) -> AccountSpec {
    AccountSpec::from_person(&person(i), SystemKind::Github)
}

/// GitHub's own 422s pass through Prism; its 404 for an unknown user on PUT membership
/// is undeclared (tests/sim_github.rs `allowed`).
fn allowed(x: &Exchange) -> bool {
    let Some(v) = &x.violation else { return false };
    let body: Value = serde_json::from_str(v).unwrap_or_default();
    let docs = body["documentation_url"].as_str().unwrap_or("");
    let passed_through_422 = x.status == 422
        && docs.starts_with("https://docs.github.com/")
        && body.get("validation").is_none();
    let unknown_user_404 =
        x.method == "PUT" && x.status == 404 && x.path.starts_with("/orgs/acme/memberships/");
    passed_through_422 || unknown_user_404
}

async fn contract(a: &GitHub, h: &GitHubHandle) {
    let id = a.authenticate().await.expect("GET /user");
    assert_eq!(id.scopes, ["admin:org"]);
    let w = a.watch().unwrap().snapshot();
    assert!(
        w.credential_expires_at.is_some(),
        "the token's expiry header: {w:?}"
    );

    let f0 = a.create_account(&spec(0)).await.expect("invite");
    assert_eq!(
        (f0.active, f0.attributes["state"].as_str()),
        (false, "pending"),
        "an invitation is pending, not a member"
    );
    h.accept_invitation("f0").unwrap();
    assert!(a.get_account_by_login("f0").await.unwrap().unwrap().active);
    // Already in the organisation: never adopted as a new account.
    let again = a.create_account(&spec(0)).await.unwrap_err();
    assert_eq!(again.class, ErrorClass::Conflict, "{again}");
    h.add_member("octo-stranger", OrgRole::Member).unwrap();
    let mut stranger = spec(1);
    stranger.login = "octo-stranger".into();
    assert_eq!(
        a.create_account(&stranger).await.unwrap_err().class,
        ErrorClass::Conflict
    );
    let nobody = a
        .create_account(&AccountSpec {
            login: "no-such-user-xyz".into(),
            ..spec(2)
        })
        .await
        .unwrap_err();
    assert_eq!(nobody.class, ErrorClass::NotFound, "{nobody}");
    for i in 2..5 {
        a.create_account(&spec(i)).await.unwrap();
        h.accept_invitation(&format!("f{i}")).unwrap();
    }
    a.create_account(&spec(5)).await.unwrap(); // stays pending

    let eng = team("engineering");
    a.add_membership("f0", &eng).await.expect("team");
    a.add_membership("f0", &eng).await.expect("twice is done");
    // f5, still invited, added to the team: GitHub holds that membership as pending, and
    // the listing counts it (the team's invitations after its members).
    a.add_membership("f5", &eng)
        .await
        .expect("team, before accepting");
    let members = collect_all(|c| a.list_members(&eng, c), 0).await.unwrap();
    assert!(
        members.iter().any(|m| m.login == "f0" && m.active),
        "{members:?}"
    );
    assert!(
        members.iter().any(|m| m.login == "f5" && !m.active),
        "a pending team membership is listed: {members:?}"
    );
    assert!(
        a.list_memberships("f5")
            .await
            .unwrap()
            .iter()
            .any(|m| m.name == "engineering"),
        "and read alike per person"
    );
    let m = a.list_memberships("f0").await.unwrap();
    assert!(m.iter().any(|m| m.name == "engineering"), "{m:?}");
    assert_eq!(
        collect_all(|c| a.list_entitlements(c), 0)
            .await
            .unwrap()
            .len(),
        3
    );
    let accounts = collect_all(|c| a.list_accounts(c), 0).await.unwrap();
    let pending: Vec<&str> = accounts
        .iter()
        .filter(|a| !a.active)
        .map(|a| a.login.as_str())
        .collect();
    assert_eq!(pending, ["f5"], "members then invitations: {accounts:?}");
    a.remove_membership("f0", &eng).await.expect("revoke");
    a.remove_membership("f0", &eng)
        .await
        .expect("revoking twice is done");
    a.deactivate_account("f5")
        .await
        .expect("cancel the invitation");
    a.deactivate_account("f4")
        .await
        .expect("remove from the organisation");
    a.deactivate_account("f4").await.expect("gone is done");
    assert!(a.get_account("f4").await.unwrap().is_none());
    assert_eq!(h.max_invitations(), 1, "nobody was invited twice");
}

#[test]
fn github_adapter_conforms_to_the_rest_description_through_prism() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let (server, h) = sim().await;
        let rig = PrismRig::start(
            "github/api.github.com.json",
            &server.base_url(),
            "/orgs/acme/members",
        )
        .await;
        let a = adapter(&rig.base());
        contract(&a, &h).await;
        // The App's token exchange and an installation token's requests, through Prism.
        let installation = h.register_app(APP_ID, &fixture("test-rsa-public.pem"));
        let app = app_adapter(&rig.base(), installation, "test-rsa-private.pem").unwrap();
        app.authenticate().await.expect("as the App");
        app.add_membership("f2", &team("everyone"))
            .await
            .expect("a team grant as the App");
        assert!(
            rig.exchanges()
                .iter()
                .any(|x| x.path.ends_with("/access_tokens"))
        );
        let violations = rig.violations(allowed);
        assert!(
            violations.is_empty(),
            "Prism reported {} violation(s) of GitHub's description:\n{}",
            violations.len(),
            violations.join("\n")
        );
        eprintln!(
            "github conformance: {} exchanges, no violations besides the documented gaps",
            rig.exchanges().len()
        );
        rig.stop().await;
        server.stop().await;
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_token_is_one_unauthorized_error_naming_the_keychain_entry() {
    let (server, h) = sim().await;
    let a = adapter(&server.base_url());
    a.authenticate().await.unwrap();
    h.revoke_token(TOKEN);
    let e = a.get_account_by_login("f0").await.unwrap_err();
    assert_eq!(e.class, ErrorClass::Unauthorized, "{e}");
    assert!(e.message.contains("keyring:gh-token"), "{e}");
    assert!(!e.to_string().contains(TOKEN), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_engine_invites_into_teams_and_reconciliation_enforces_drift_away() {
    let (server, h) = sim().await;
    let catalogue = "org = \"acme\"\n[[systems.gh.entitlements]]\nkind = \"team\"\nname = \"everyone\"\n\
        [[systems.gh.entitlements]]\nkind = \"team\"\nname = \"engineering\"\n\
        [[systems.gh.entitlements]]\nkind = \"team\"\nname = \"admins\"\nrisk = \"privileged\"\n";
    let run = Run::new(
        &[Entry::new("gh", "github", &server.base_url(), "gh-token").settings(catalogue)],
        &[("gh-token", TOKEN)],
    );
    let people = all_and_evens(4, "gh:team:everyone", "gh:team:engineering");
    run.set_people(&people);
    let s = run.engine(fast()).run_until_idle(None).await.unwrap();
    assert_eq!(s.failed, 0, "{s:?} {:#?}", run.failed());
    // f2 has not accepted yet: their teams are pending at GitHub, which is not drift.
    for i in [0, 1, 3] {
        h.accept_invitation(&format!("f{i}")).unwrap();
    }
    // Behind our back: f1 into admins, f0 out of engineering.
    h.add_team_member("admins", "f1", github::TeamRole::Member)
        .unwrap();
    assert!(h.remove_team_member("engineering", "f0"));
    let (_, f) = reconcile::reconcile(&run, "gh").await;
    reconcile::assert_found(&f, &[("excess", "f1"), ("missing", "f0")]);
    assert!(
        !f.iter().any(|f| f.account.as_deref() == Some("f2")),
        "a pending invitee's teams are not drift: {f:#?}"
    );
    reconcile::enforce_all(&run, &f);
    let s = run.engine(fast()).run_until_idle(None).await.unwrap();
    assert_eq!(s.failed, 0, "{s:?} {:#?}", run.failed());
    assert!(
        !h.team_members("admins").iter().any(|m| m.login == "f1"),
        "excess removed"
    );
    assert!(
        h.team_members("engineering")
            .iter()
            .any(|m| m.login == "f0"),
        "missing restored"
    );
}

/// A GitHub App: the JWT exchanged for an installation token asking only for what the
/// adapter needs, the token cached, renewed after it is revoked (one 401, one new token),
/// and a key GitHub does not know refused as one Unauthorized naming the keychain entry.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_github_app_exchanges_its_jwt_for_installation_tokens_and_renews_them() {
    let (server, h) = sim().await;
    let base = server.base_url();
    let installation = h.register_app(APP_ID, &fixture("test-rsa-public.pem"));
    let a = app_adapter(&base, installation, "test-rsa-private.pem").unwrap();
    let id = a.authenticate().await.expect("as the App");
    assert!(id.principal.contains("GitHub App 314"), "{id:?}");
    assert_eq!(
        id.scopes,
        ["members:write"],
        "only what is needed was asked for"
    );
    let w = a.watch().unwrap().snapshot();
    assert!(
        (3500..=3600).contains(&w.token_lifetime_secs.unwrap_or(0)),
        "{w:?}"
    );
    assert!(
        w.credential_expires_at.is_none(),
        "a token's lifetime is not the key's expiry"
    );
    assert_eq!(a.about().needed_scopes, ["members:write"]);

    let f0 = a.create_account(&spec(0)).await.expect("invite as the App");
    assert_eq!(f0.attributes["state"], "pending");
    h.accept_invitation("f0").unwrap();
    a.add_membership("f0", &team("engineering")).await.unwrap();
    assert_eq!(h.token_requests(), 1, "the token is cached");
    let issued = h.issued_installation_tokens();
    assert_eq!(issued.len(), 1);

    h.revoke_installation_tokens();
    let m = a
        .list_memberships("f0")
        .await
        .expect("renewed after the 401");
    assert!(m.iter().any(|m| m.name == "engineering"), "{m:?}");
    assert_eq!(h.token_requests(), 2, "one new token after the 401");
    let text = format!("{a:?}");
    for t in h.issued_installation_tokens() {
        assert!(!text.contains(&t), "a token in Debug output");
    }

    // A key the App was not registered with.
    let stranger = app_adapter(&base, installation, "test-rsa-other-private.pem").unwrap();
    let e = stranger.authenticate().await.unwrap_err();
    assert_eq!(e.class, ErrorClass::Unauthorized, "{e}");
    assert!(e.message.contains("keyring:gh-app-key"), "{e}");
    assert!(e.message.contains("GitHub App 314"), "{e}");
    // An installation that is not this App's.
    let other = app_adapter(&base, installation + 1, "test-rsa-private.pem").unwrap();
    let e = other.authenticate().await.unwrap_err();
    assert!(e.message.contains("installation"), "{e}");
}

#[test]
fn github_app_settings_are_checked_when_the_system_is_built() {
    let e = try_adapter("http://127.0.0.1:9", "app_id = 1\n", "k", "x").unwrap_err();
    assert!(e.to_string().contains("go together"), "{e}");
    let e = app_adapter("http://127.0.0.1:9", 7, "test-rsa-public.pem").unwrap_err();
    let text = e.to_string();
    assert!(text.contains("keyring:gh-app-key"), "{text}");
    assert!(text.contains("not a PEM RSA private key"), "{text}");
    assert!(!text.contains("BEGIN"), "the key is not echoed: {text}");
}

/// The engine against the simulator at a 10% fault rate, with some writes' answers lost
/// after GitHub acted: every invitation and team membership made once (a lost invitation
/// answer is adopted by accessdesk's record of sending it, since GitHub holds no HR id).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn converges_at_ten_percent_faults_with_lost_answers() {
    let faults = ten_percent_faults(12);
    let (server, h) = github::spawn(GitHubSimOptions {
        faults,
        ..Default::default()
    })
    .await
    .unwrap();
    h.add_token(
        TOKEN,
        TokenInfo {
            scopes: vec!["admin:org".into()],
            expires_at: None,
            login: github::ADMIN_LOGIN.into(),
        },
    );
    for i in 0..12 {
        h.seed_user(&format!("f{i}"), 1000 + i as u64, None)
            .unwrap();
    }
    for t in ["everyone", "engineering"] {
        h.seed_team(t).unwrap();
    }
    // The first invitation of f3 and a team grant of f4 are carried out, then their
    // answers lost; a few more at random.
    h.fail(FailRule::new(
        Some(Method::PUT),
        "/orgs/acme/memberships/f3",
        BodyFault::LostResponse,
        1,
    ));
    h.fail(FailRule::new(
        Some(Method::PUT),
        "/teams/everyone/memberships/f4",
        BodyFault::LostResponse,
        1,
    ));
    h.set_lost_response_rate(0.02);
    let catalogue = "org = \"acme\"\n[[systems.gh.entitlements]]\nkind = \"team\"\nname = \"everyone\"\n\
        [[systems.gh.entitlements]]\nkind = \"team\"\nname = \"engineering\"\n";
    let mut run = Run::new(
        &[Entry::new("gh", "github", &server.base_url(), "gh-token").settings(catalogue)],
        &[("gh-token", TOKEN)],
    );
    run.request_timeout = Duration::from_millis(700);
    let people = all_and_evens(12, "gh:team:everyone", "gh:team:engineering");
    run.set_people(&people);
    let s = run.engine(fast()).run_until_idle(None).await.unwrap();
    assert_eq!(s.failed, 0, "{s:?} {:#?}", run.failed());
    let (_, injected) = h.faults().counts();
    assert!(injected > 0, "the faults did not bite");
    assert_eq!(
        h.invitations_for("f3"),
        1,
        "the lost invitation was adopted, not resent"
    );
    assert_eq!(h.max_invitations(), 1, "someone was invited twice");
    assert!(
        h.max_membership_adds() <= 1,
        "a team membership was added twice"
    );
    assert_eq!(h.team_members("engineering").len(), 6);
    assert_eq!(h.team_members("everyone").len(), 12);
    run.audit_ok();
}
