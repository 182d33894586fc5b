//! The Okta adapter's reading side for reconciliation, against the Okta simulator: every
//! group listed once over Link pages, the synced attributes read back from users and group
//! members, the largest page each listing endpoint allows, and a listing cut off by a
//! connection reset at its Nth page (retryable, and resumed from the same cursor).

mod okta_support;

use accessdesk::adapters::http::install_crypto_provider;
use accessdesk::adapters::okta::{GROUP_USERS_PAGE_MAX, GROUPS_PAGE_MAX, USERS_PAGE_MAX};
use accessdesk::adapters::prelude::*;
use accessdesk::adapters::{
    EntitlementTarget, ErrorClass, RemoteAccount, RemoteEntitlement, collect_all,
};
use accessdesk::model::EntitlementKind;
use accessdesk::sim::SimServer;
use accessdesk::sim::okta::{self, BodyFault, FailRule, OktaHandle, OktaSimOptions};
use axum::http::Method;
use okta_support::*;
use std::collections::BTreeSet;

async fn sim() -> (SimServer, OktaHandle) {
    install_crypto_provider();
    let (server, handle) = okta::spawn(OktaSimOptions::default()).await.expect("sim");
    handle.add_api_token(SSWS_TOKEN);
    (server, handle)
}

fn by_login<'a>(all: &'a [RemoteAccount], login: &str) -> &'a RemoteAccount {
    all.iter()
        .find(|a| a.login == login)
        .unwrap_or_else(|| panic!("{login} not listed"))
}

/// What an account made from `spec(i)` must read back as.
fn assert_spec_attributes(a: &RemoteAccount, i: usize) {
    let s = spec(i);
    let attr = |k: &str| a.attributes.get(k).map(String::as_str);
    assert_eq!(attr("department"), Some("Engineering"), "{a:?}");
    assert_eq!(
        attr("title"),
        Some(format!("Engineer {i}").as_str()),
        "{a:?}"
    );
    assert_eq!(attr("email"), Some(s.email.as_str()));
    assert_eq!(attr("givenName"), Some(s.given_name.as_str()));
    assert_eq!(attr("familyName"), Some(s.family_name.as_str()));
    assert_eq!(attr("displayName"), Some(s.display_name.as_str()));
    // Written by the adapter, not set for this person: known to be empty.
    assert_eq!(attr("costCenter"), Some(""), "{a:?}");
    // Not written without custom_attributes: not known.
    assert_eq!(attr("location"), None, "{a:?}");
    assert_eq!(attr("manager"), None, "{a:?}");
    assert_eq!(a.hris_id.as_deref(), Some(s.hris_id.as_str()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_okta_group_is_listed_once_over_link_pages() {
    let (server, sim) = sim().await;
    let mut want = BTreeSet::new();
    for i in 0..10 {
        let name = format!("team-{i:02}");
        want.insert((sim.seed_group(&name), name));
    }
    sim.seed_app_group("imported-from-ad");
    let a = ssws_adapter(&server.base_url(), 3);

    let mut pages = 0;
    let mut cursor = None;
    let mut seen: Vec<RemoteEntitlement> = Vec::new();
    let mut third = (None, 0);
    loop {
        let p = a.list_entitlements(cursor.clone()).await.expect("page");
        pages += 1;
        assert!(p.items.len() <= 3, "{} items on a page of 3", p.items.len());
        if pages == 3 {
            third = (cursor.clone(), seen.len());
        }
        seen.extend(p.items);
        match p.next {
            Some(n) => cursor = Some(n),
            None => break,
        }
    }
    // 12 groups (10, Everyone, the app group) at 3 a page: 4 pages, 2 left out.
    assert_eq!(pages, 4);
    let got: BTreeSet<(String, String)> = seen
        .iter()
        .map(|e| (e.external_id.clone(), e.name.clone()))
        .collect();
    assert_eq!(got.len(), seen.len(), "no group twice: {seen:?}");
    assert_eq!(got, want, "BUILT_IN and APP_GROUP groups are not listed");
    assert!(seen.iter().all(|e| e.kind == EntitlementKind::Group));

    // A cursor resumes on its own: the third page again, the same groups.
    let (third_cursor, before) = third;
    let again = a.list_entitlements(third_cursor).await.expect("page 3");
    assert!(!again.items.is_empty());
    assert_eq!(
        again.items,
        seen[before..before + again.items.len()].to_vec()
    );
    let e = a
        .list_entitlements(Some("/api/v1/users?limit=3".into()))
        .await
        .expect_err("a users cursor is not a groups cursor");
    assert_eq!(e.class, ErrorClass::Permanent);

    // A listed group's target lists its members (by id, no name look-up).
    let target = seen[0].target();
    let uid = sim.seed_user("member@example.com", "M", "N");
    a.add_membership(&uid, &target).await.expect("add");
    let members = collect_all(|c| a.list_members(&target, c), 0)
        .await
        .unwrap();
    assert_eq!(members.len(), 1);
    assert_eq!(members[0].external_id, uid);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accounts_and_members_read_back_their_synced_attributes() {
    let (server, sim) = sim().await;
    let a = ssws_adapter(&server.base_url(), 2);
    let eng = sim.seed_group("engineering");
    let mut ids = Vec::new();
    for i in 0..5 {
        let created = a.create_account(&spec(i)).await.expect("create");
        // The create answer is Okta's user object: the attributes as Okta holds them.
        assert_spec_attributes(&created, i);
        ids.push(created.external_id);
    }
    let all = collect_all(|c| a.list_accounts(c), 0).await.expect("list");
    for i in 0..5 {
        assert_spec_attributes(by_login(&all, &spec(i).login), i);
    }
    // The admin was made without department or title: known, and empty.
    let admin = by_login(&all, okta::ADMIN_LOGIN);
    assert_eq!(
        admin.attributes.get("department").map(String::as_str),
        Some("")
    );

    // An update changes what is read back; what it leaves out stays.
    let mut moved = spec(0);
    moved
        .attributes
        .insert("department".into(), "Research".into());
    let upd = a.update_account(&ids[0], &moved).await.expect("update");
    assert_eq!(upd.attributes["department"], "Research");
    let got = a.get_account(&ids[0]).await.unwrap().expect("found");
    assert_eq!(got.attributes["department"], "Research");
    assert_eq!(got.attributes["title"], "Engineer 0");
    let by = a
        .get_account_by_login(&spec(0).login)
        .await
        .unwrap()
        .expect("found");
    assert_eq!(by.attributes, got.attributes);

    // Group members carry the HR id and the attributes too (3 members at 2 a page).
    let target = EntitlementTarget {
        kind: EntitlementKind::Group,
        name: "engineering".into(),
        external_id: eng.clone(),
    };
    for id in &ids[1..4] {
        a.add_membership(id, &target).await.expect("add");
    }
    let members = collect_all(|c| a.list_members(&target, c), 0)
        .await
        .unwrap();
    assert_eq!(members.len(), 3);
    for i in 1..4 {
        assert_spec_attributes(by_login(&members, &spec(i).login), i);
    }

    // location and manager are read where they are written: as custom attributes.
    let custom = adapter_with(
        &server.base_url(),
        SSWS_TOKEN,
        &[(
            "custom_attributes",
            toml::Value::Array(vec!["location".into(), "manager".into()]),
        )],
        |_| {},
    );
    let mut s = spec(7);
    s.attributes.insert("location".into(), "Berlin".into());
    s.attributes.insert("manager".into(), "E0001".into());
    let made = custom.create_account(&s).await.expect("create");
    let read = custom
        .get_account(&made.external_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(read.attributes["location"], "Berlin");
    assert_eq!(read.attributes["manager"], "E0001");
    let other = custom.get_account(&ids[1]).await.unwrap().unwrap();
    assert_eq!(other.attributes["location"], "", "held, not set");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_listing_asks_for_the_largest_page_its_endpoint_allows() {
    let (server, sim) = sim().await;
    let gid = sim.seed_group("engineering");
    let a = adapter_with(&server.base_url(), SSWS_TOKEN, &[], |_| {});
    a.list_accounts(None).await.expect("users");
    let target = EntitlementTarget {
        kind: EntitlementKind::Group,
        name: "engineering".into(),
        external_id: gid.clone(),
    };
    a.list_members(&target, None).await.expect("members");
    a.list_entitlements(None).await.expect("groups");
    let query_of = |path: &str| {
        let log = sim.log();
        let r = log
            .iter()
            .find(|r| r.method == Method::GET && r.path == path)
            .unwrap_or_else(|| panic!("no GET {path}"));
        r.query.clone()
    };
    assert!(
        query_of("/api/v1/users").contains(&format!("limit={USERS_PAGE_MAX}")),
        "{}",
        query_of("/api/v1/users")
    );
    assert_eq!(
        query_of(&format!("/api/v1/groups/{gid}/users")),
        format!("limit={GROUP_USERS_PAGE_MAX}")
    );
    assert_eq!(
        query_of("/api/v1/groups"),
        format!("limit={GROUPS_PAGE_MAX}")
    );
    assert_eq!(
        (USERS_PAGE_MAX, GROUP_USERS_PAGE_MAX, GROUPS_PAGE_MAX),
        (200, 1000, 10_000)
    );

    // A page_size setting caps every listing.
    sim.clear_log();
    let capped = ssws_adapter(&server.base_url(), 50);
    capped.list_members(&target, None).await.unwrap();
    capped.list_entitlements(None).await.unwrap();
    assert_eq!(query_of(&format!("/api/v1/groups/{gid}/users")), "limit=50");
    assert_eq!(query_of("/api/v1/groups"), "limit=50");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_listing_reset_at_its_4th_page_is_transient_and_resumes_from_that_cursor() {
    let (server, sim) = sim().await;
    let gid = sim.seed_group("big");
    let target = EntitlementTarget {
        kind: EntitlementKind::Group,
        name: "big".into(),
        external_id: gid.clone(),
    };
    let a = ssws_adapter(&server.base_url(), 3);
    let attempts = fast_retry().max_attempts;
    let mut want = BTreeSet::new();
    for i in 0..15 {
        let uid = sim.seed_user(&format!("m{i:02}@example.com"), "M", &format!("N{i}"));
        a.add_membership(&uid, &target).await.expect("add");
        want.insert(uid);
    }
    let members_path = format!("/api/v1/groups/{gid}/users");
    // The 4th GET of this listing, and each retry the HTTP layer makes of it, loses its
    // connection before any answer.
    sim.fail(FailRule::new(Some(Method::GET), &members_path, BodyFault::Reset, attempts).on_nth(4));
    sim.clear_log();
    let mut got: Vec<String> = Vec::new();
    let mut cursor = None;
    for page in 1..=3 {
        let p = a.list_members(&target, cursor.clone()).await.expect("page");
        assert_eq!(p.items.len(), 3, "page {page}");
        got.extend(p.items.into_iter().map(|m| m.external_id));
        cursor = p.next;
    }
    let fourth = cursor.clone().expect("a 4th page");
    let e = a
        .list_members(&target, Some(fourth.clone()))
        .await
        .expect_err("cut off at page 4");
    assert_eq!(e.class, ErrorClass::Transient, "{e}");
    assert!(e.class.is_retryable());
    assert_eq!(e.status, None, "no HTTP answer at all: {e}");
    assert!(e.message.contains("connection failed"), "{e}");
    assert!(
        e.message
            .contains(&format!("gave up after {attempts} attempts")),
        "{e}"
    );
    let tried = |c: &str| {
        let q = c.split_once('?').map(|(_, q)| q).unwrap_or("").to_string();
        sim.count(|r| r.path == members_path && r.query == q)
    };
    assert_eq!(tried(&fourth), attempts as usize);

    // Calling again with the same cursor resumes: the rule is spent.
    let mut cursor = Some(fourth.clone());
    while let Some(c) = cursor {
        let p = a.list_members(&target, Some(c)).await.expect("resumed");
        got.extend(p.items.into_iter().map(|m| m.external_id));
        cursor = p.next;
    }
    assert_eq!(tried(&fourth), attempts as usize + 1);
    assert_eq!(got.len(), 15, "every member once: {got:?}");
    assert_eq!(got.iter().cloned().collect::<BTreeSet<_>>(), want);
    assert_eq!(
        sim.count(|r| r.path == members_path),
        attempts as usize + 5,
        "pages 1-3 were not fetched again"
    );

    // The same cut-off on the page a given cursor asks for (`after=`), through the
    // collector: it retries that page from its cursor and completes.
    sim.clear_log();
    let after = fourth
        .split('&')
        .chain(fourth.split('?'))
        .find(|p| p.starts_with("after="))
        .expect("an after= cursor")
        .to_string();
    sim.fail(
        FailRule::new(Some(Method::GET), &members_path, BodyFault::Reset, attempts)
            .with_query(&after),
    );
    let all = collect_all(|c| a.list_members(&target, c), 1)
        .await
        .expect("the collector resumes the failed page");
    assert_eq!(
        all.iter()
            .map(|m| m.external_id.clone())
            .collect::<BTreeSet<_>>(),
        want
    );
    assert_eq!(all.len(), 15);
    assert_eq!(
        sim.count(|r| r.query.contains(&after)),
        attempts as usize + 1
    );
    server.stop().await;
}
