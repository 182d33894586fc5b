//! The LDAP adapter against a real OpenLDAP slapd on loopback (the memberOf and refint
//! overlays on), started per test (tests/common/slapd.rs): the whole contract, the
//! groupOfNames placeholder, paged-results listing, each deactivation mode, a wrong bind
//! password named by its keychain entry, the engine provisioning then reconciling
//! drift made behind accessdesk's back, and the engine converging through a TCP fault
//! proxy (requests dropped, carried out with their answers lost, or held back).

#[path = "common/engine.rs"]
mod engine;
#[path = "common/reconcile.rs"]
mod reconcile;
#[path = "common/slapd.rs"]
mod slapd;

use accessdesk::adapters::http::{RateLimiter, Timeouts};
use accessdesk::adapters::kit::testkit::NamedSecrets;
use accessdesk::adapters::ldap::LdapAdapter;
use accessdesk::adapters::prelude::*;
use accessdesk::adapters::registry::AdapterContext;
use accessdesk::adapters::{AccountSpec, EntitlementTarget, ErrorClass, collect_all};
use accessdesk::config::SystemsConfig;

use accessdesk::model::{EntitlementKind, SystemKind};
use accessdesk::sim::tcp_proxy::{self, TcpFaultProfile};
use engine::{Entry, Run, fast, person};
use slapd::{ROOT_DN, ROOT_PASSWORD, SUFFIX, Slapd};
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

const ENTRY: &str = "ldap-bind";

fn settings(extra: &str) -> String {
    format!(
        "bind_dn = \"{ROOT_DN}\"\nusers_ou = \"ou=people,{SUFFIX}\"\ngroups_ou = \"ou=groups,{SUFFIX}\"\n\
         security = \"none\"\nplaceholder = \"cn=placeholder,{SUFFIX}\"\npage_size = 2\n{extra}"
    )
}

fn adapter(url: &str, password: &str, extra: &str) -> accessdesk::Result<LdapAdapter> {
    let toml = format!(
        "[systems.dir]\nkind = \"ldap\"\nbase_url = \"{url}\"\ncredential = \"keyring:{ENTRY}\"\n\
         [systems.dir.settings]\n{}",
        settings(extra)
    );
    let cfg = SystemsConfig::parse(Path::new("systems.toml"), &toml)?;
    let secrets = NamedSecrets::one(ENTRY, password);
    LdapAdapter::from_context(AdapterContext {
        entry: &cfg.catalog.systems["dir"],
        secrets: &secrets,
        limiter: RateLimiter::new("dir", None, 4),
        timeouts: Timeouts::default(),
    })
}

fn spec(i: usize) -> AccountSpec {
    let mut p = person(i);
    p.title = "Engineer".into();
    AccountSpec::from_person(&p, SystemKind::Ldap)
}

fn group(cn: &str) -> EntitlementTarget {
    EntitlementTarget {
        kind: EntitlementKind::Group,
        name: cn.into(),
        external_id: cn.into(),
    }
}

fn members(s: &Slapd, cn: &str) -> Vec<String> {
    let mut m = s.values(
        &format!("cn={cn},ou=groups,{SUFFIX}"),
        "(objectClass=*)",
        "member",
    );
    m.sort();
    m
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_whole_contract_against_slapd() {
    let s = Slapd::start();
    for g in ["eng", "admins", "sales"] {
        s.group(g);
    }
    let a = adapter(&s.url, ROOT_PASSWORD, "").unwrap();
    let id = a.authenticate().await.expect("bind");
    assert_eq!(id.principal, ROOT_DN);

    let ada = a.create_account(&spec(0)).await.expect("create");
    assert_eq!(
        (ada.login.as_str(), ada.hris_id.as_deref()),
        ("f0", Some("E000"))
    );
    assert!(ada.active);
    assert_eq!(ada.attributes["title"], "Engineer");
    let dup = a.create_account(&spec(0)).await.unwrap_err();
    assert_eq!(dup.class, ErrorClass::Conflict, "{dup}");
    for i in 1..5 {
        a.create_account(&spec(i)).await.expect("create");
    }
    let got = a.get_account_by_login("f0").await.unwrap().unwrap();
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
    let u = a
        .update_account(&ada.external_id, &moved)
        .await
        .expect("update");
    assert_eq!(u.attributes["department"], "Finance");

    // Grant: the placeholder gives way to the first real member; twice is done.
    let eng = group("eng");
    a.add_membership(&ada.external_id, &eng)
        .await
        .expect("grant");
    a.add_membership(&ada.external_id, &eng)
        .await
        .expect("granting twice is done");
    assert_eq!(members(&s, "eng"), [format!("uid=f0,ou=people,{SUFFIX}")]);
    let bob = a.get_account_by_login("f1").await.unwrap().unwrap();
    a.add_membership(&bob.external_id, &eng).await.unwrap();
    let listed = collect_all(|c| a.list_members(&eng, c), 0).await.unwrap();
    let mut logins: Vec<String> = listed.iter().map(|m| m.login.clone()).collect();
    logins.sort();
    assert_eq!(logins, ["f0", "f1"], "members found through memberOf");
    let m = a.list_memberships(&ada.external_id).await.unwrap();
    assert_eq!(
        m.iter().map(|m| m.name.as_str()).collect::<Vec<_>>(),
        ["eng"]
    );
    // Paged results, two entries a page.
    assert_eq!(
        collect_all(|c| a.list_accounts(c), 0).await.unwrap().len(),
        5
    );
    assert_eq!(
        collect_all(|c| a.list_entitlements(c), 0)
            .await
            .unwrap()
            .len(),
        3
    );
    let no_group = a
        .add_membership(&ada.external_id, &group("nope"))
        .await
        .unwrap_err();
    assert_eq!(
        no_group.class,
        ErrorClass::NotFound,
        "a group that does not exist is not done"
    );

    // Revoke: the last member leaves the placeholder behind; revoking twice is done.
    a.remove_membership(&bob.external_id, &eng).await.unwrap();
    a.remove_membership(&ada.external_id, &eng)
        .await
        .expect("last member");
    assert_eq!(members(&s, "eng"), [format!("cn=placeholder,{SUFFIX}")]);
    a.remove_membership(&ada.external_id, &eng)
        .await
        .expect("revoking twice is done");

    // Deactivation by attribute (the default), idempotent, and back.
    a.deactivate_account(&ada.external_id)
        .await
        .expect("deactivate");
    a.deactivate_account(&ada.external_id).await.expect("again");
    assert!(
        !a.get_account(&ada.external_id)
            .await
            .unwrap()
            .unwrap()
            .active
    );
    a.reactivate_account(&ada.external_id)
        .await
        .expect("reactivate");
    assert!(
        a.get_account(&ada.external_id)
            .await
            .unwrap()
            .unwrap()
            .active
    );
    a.deactivate_account("00000000-0000-0000-0000-000000000000")
        .await
        .expect("an entry that is gone is deactivated");

    // Deactivation by moving to a disabled OU: the entryUUID follows the entry.
    let moving = adapter(
        &s.url,
        ROOT_PASSWORD,
        &format!("deactivate = \"disabled_ou\"\ndisabled_ou = \"ou=disabled,{SUFFIX}\""),
    )
    .unwrap();
    moving
        .deactivate_account(&bob.external_id)
        .await
        .expect("move");
    assert_eq!(
        s.values(&format!("ou=disabled,{SUFFIX}"), "(uid=f1)", "uid"),
        ["f1"]
    );
    let b = moving.get_account(&bob.external_id).await.unwrap().unwrap();
    assert!(!b.active);
    moving
        .reactivate_account(&bob.external_id)
        .await
        .expect("move back");
    assert!(
        moving
            .get_account(&bob.external_id)
            .await
            .unwrap()
            .unwrap()
            .active
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_bind_password_names_the_keychain_entry_and_clear_text_is_loopback_only() {
    let s = Slapd::start();
    let a = adapter(&s.url, "not-the-password", "").unwrap();
    let e = a.authenticate().await.unwrap_err();
    assert_eq!(e.class, ErrorClass::Unauthorized, "{e}");
    assert!(e.message.contains(&format!("keyring:{ENTRY}")), "{e}");
    assert!(!e.to_string().contains("not-the-password"), "{e}");
    let refused = adapter("ldap://ldap.example.com", ROOT_PASSWORD, "").unwrap_err();
    assert!(refused.to_string().contains("loopback only"), "{refused}");
}

/// The three groups the engine tests catalogue (admins privileged).
fn catalogue() -> String {
    format!(
        "{}[[systems.dir.entitlements]]\nkind = \"group\"\nname = \"everyone\"\n\
         [[systems.dir.entitlements]]\nkind = \"group\"\nname = \"engineering\"\n\
         [[systems.dir.entitlements]]\nkind = \"group\"\nname = \"admins\"\nrisk = \"privileged\"\n",
        settings("")
    )
}

/// The engine through a TCP fault proxy in front of slapd, about 10% of requests
/// faulted: dropped with their connection before slapd sees them, carried out with the
/// answer lost, or held back. Everyone ends with one entry and the right groups; an add
/// whose answer was lost is read back and adopted by the HR id on the entry.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn converges_at_ten_percent_faults_through_a_tcp_fault_proxy() {
    let s = Slapd::start();
    for g in ["everyone", "engineering", "admins"] {
        s.group(g);
    }
    let upstream: SocketAddr = s.url.trim_start_matches("ldap://").parse().unwrap();
    let proxy = tcp_proxy::spawn(
        upstream,
        TcpFaultProfile {
            drop_rate: 0.04,
            lost_answer_rate: 0.04,
            slow_rate: 0.02,
            slow_delay: Duration::from_millis(300),
            seed: 5,
        },
    )
    .await
    .unwrap();
    let mut run = Run::new(
        &[Entry::new("dir", "ldap", &proxy.url("ldap"), ENTRY).settings(&catalogue())],
        &[(ENTRY, ROOT_PASSWORD)],
    );
    run.request_timeout = Duration::from_secs(2);
    run.intend(12, &["dir"]);
    let sum = run.engine(fast()).run_until_idle(None).await.unwrap();
    assert_eq!(sum.failed, 0, "{sum:?} {:#?}", run.failed());
    assert_eq!(sum.succeeded, 12 + 12 + 6, "{sum:?}");
    let c = proxy.counts();
    assert!(
        c.dropped > 0 && c.lost_answers > 0,
        "the faults did not bite: {c:?}"
    );
    let mut uids = s.values(
        &format!("ou=people,{SUFFIX}"),
        "(objectClass=inetOrgPerson)",
        "uid",
    );
    uids.sort();
    uids.dedup();
    assert_eq!(uids.len(), 12, "one entry per person: {uids:?}");
    assert_eq!(members(&s, "everyone").len(), 12);
    assert_eq!(members(&s, "engineering").len(), 6);
    run.audit_ok();

    // One add carried out with its answer lost, by hand: the adapter reports a transient
    // failure, and the retry finds the entry already there, carrying the person's HR id
    // (the proof the engine adopts it by).
    let a = adapter(&proxy.url("ldap"), ROOT_PASSWORD, "").unwrap();
    proxy.set_profile(TcpFaultProfile::none());
    a.authenticate().await.unwrap();
    proxy.set_profile(TcpFaultProfile {
        lost_answer_rate: 1.0,
        ..TcpFaultProfile::none()
    });
    let e = a.create_account(&spec(20)).await.unwrap_err();
    assert_eq!(e.class, ErrorClass::Transient, "{e}");
    proxy.set_profile(TcpFaultProfile::none());
    let again = a.create_account(&spec(20)).await.unwrap_err();
    assert_eq!(
        again.class,
        ErrorClass::Conflict,
        "the lost add was carried out: {again}"
    );
    let found = a
        .get_account_by_login(&spec(20).login)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.hris_id.as_deref(), Some(spec(20).hris_id.as_str()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_engine_provisions_and_reconciliation_enforces_drift_away() {
    let s = Slapd::start();
    for g in ["everyone", "engineering", "admins"] {
        s.group(g);
    }
    let catalogue = catalogue();
    let run = Run::new(
        &[Entry::new("dir", "ldap", &s.url, ENTRY).settings(&catalogue)],
        &[(ENTRY, ROOT_PASSWORD)],
    );
    run.intend(6, &["dir"]);
    let sum = run.engine(fast()).run_until_idle(None).await.unwrap();
    assert_eq!(sum.failed, 0, "{sum:?} {:#?}", run.failed());
    assert_eq!(sum.succeeded, 6 + 6 + 3, "{sum:?}");
    assert_eq!(members(&s, "engineering").len(), 3);
    run.audit_ok();

    // Behind accessdesk's back: f1 into admins, f0 out of engineering, a hand-made entry,
    // and E003 leaves while the directory still has them.
    let dn = |u: &str| format!("uid={u},ou=people,{SUFFIX}");
    s.modify(&format!(
        "dn: cn=admins,ou=groups,{SUFFIX}\nchangetype: modify\nadd: member\nmember: {}\n\n\
         dn: cn=engineering,ou=groups,{SUFFIX}\nchangetype: modify\ndelete: member\nmember: {}\n",
        dn("f1"),
        dn("f0")
    ));
    s.ldif(&format!(
        "dn: uid=stray,ou=people,{SUFFIX}\nobjectClass: inetOrgPerson\nuid: stray\ncn: Stray Account\nsn: Account\n"
    ));
    reconcile::make_leaver(&run, 3);
    let (_, f) = reconcile::reconcile(&run, "dir").await;
    reconcile::assert_found(
        &f,
        &[
            ("leaver_with_access", "f3"),
            ("excess", "f1"),
            ("missing", "f0"),
            ("orphan", "stray"),
        ],
    );
    reconcile::enforce_all(&run, &f);
    let sum = run.engine(fast()).run_until_idle(None).await.unwrap();
    assert_eq!(sum.failed, 0, "{sum:?} {:#?}", run.failed());
    assert!(!members(&s, "admins").contains(&dn("f1")), "excess removed");
    assert!(
        members(&s, "engineering").contains(&dn("f0")),
        "missing restored"
    );
    assert_eq!(
        s.values(&dn("f3"), "(objectClass=*)", "employeeType"),
        ["disabled"]
    );
    assert_eq!(
        s.values(&dn("stray"), "(objectClass=*)", "employeeType"),
        ["disabled"]
    );
    let (_, after) = reconcile::reconcile(&run, "dir").await;
    let left: Vec<&str> = after
        .iter()
        .filter(|f| f.class != "orphan")
        .map(|f| f.class.as_str())
        .collect();
    assert!(left.is_empty(), "drift left: {after:#?}");
}
