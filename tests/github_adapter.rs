//! The GitHub adapter against the GitHub simulator: its contract through Stoplight Prism
//! in proxy mode (`--errors`) with GitHub's REST description (two narrow, documented
//! gaps, as in tests/sim_github.rs: a 422 GitHub sends passes through Prism, and GitHub's
//! undeclared 404 for an unknown user on PUT membership); an invitation as its own
//! pending state; someone already in the organisation never adopted as a new account; a
//! revoked token named by its keychain entry; the token's expiry reaching hygiene; and the
//! engine inviting people into teams, then reconciling team drift away.

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
use engine::{Entry, Run, fast, person};
use prism::{Exchange, PrismRig};
use serde_json::Value;
use std::path::Path;

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
    let toml = format!(
        "[systems.gh]\nkind = \"github\"\nbase_url = \"{base}\"\ncredential = \"keyring:gh-token\"\n[systems.gh.settings]\norg = \"acme\"\npage_size = 2\n"
    );
    let cfg = SystemsConfig::parse(Path::new("systems.toml"), &toml).unwrap();
    GitHub::from_context(AdapterContext {
        entry: &cfg.catalog.systems["gh"],
        secrets: &NamedSecrets::one("gh-token", TOKEN),
        limiter: RateLimiter::new("gh", None, 4),
        timeouts: Timeouts::default(),
    })
    .unwrap()
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
    let members = collect_all(|c| a.list_members(&eng, c), 0).await.unwrap();
    assert!(members.iter().any(|m| m.login == "f0"), "{members:?}");
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
    let people: Vec<_> = (0..4)
        .map(|i| {
            let mut ents = vec!["gh:team:everyone"];
            if i % 2 == 0 {
                ents.push("gh:team:engineering");
            }
            (person(i), ents)
        })
        .collect();
    run.set_people(&people);
    let s = run.engine(fast()).run_until_idle(None).await.unwrap();
    assert_eq!(s.failed, 0, "{s:?} {:#?}", run.failed());
    for i in 0..4 {
        h.accept_invitation(&format!("f{i}")).unwrap();
    }
    // Behind our back: f1 into admins, f0 out of engineering.
    h.add_team_member("admins", "f1", github::TeamRole::Member)
        .unwrap();
    assert!(h.remove_team_member("engineering", "f0"));
    let (_, f) = reconcile::reconcile(&run, "gh").await;
    reconcile::assert_found(&f, &[("excess", "f1"), ("missing", "f0")]);
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
