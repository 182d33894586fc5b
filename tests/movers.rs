//! Movers: a changed department, title or name reaches the targets. The plan shows an
//! `update_attributes` with old -> new, and the adapters write it: IAM tags (moto) and the
//! SCIM enterprise extension (scim2-server, a real service provider).

#[path = "common/aws_contract.rs"]
mod contract;
#[path = "common/engine.rs"]
mod engine;
#[path = "common/moto.rs"]
mod moto;
#[path = "common/scim_server.rs"]
mod scim_server;

use accessdesk::model::Person;
use contract::{MotoTarget, SLOW, iam, xml_all};
use engine::{Entry, Run, fast};

fn last_plan_details(run: &Run) -> Vec<(String, String, String)> {
    let s = run.store.lock().unwrap();
    let mut stmt = s
        .conn()
        .prepare(
            "SELECT kind, system, COALESCE(detail, '') FROM plan_ops
             WHERE plan_id = (SELECT id FROM plans ORDER BY created_at DESC, rowid DESC LIMIT 1)",
        )
        .unwrap();
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_department_change_reaches_iam_and_scim() {
    let t = MotoTarget::start().await;
    let admin = iam(&t.moto.url, &t.admin.credential(), "", SLOW);
    admin
        .call("CreateGroup", &[("GroupName", "everyone")])
        .await
        .unwrap();
    let scim = scim_server::ScimServer::start().await;
    let run = Run::new(
        &[
            Entry::new("aws", "aws_iam", &t.moto.url, "aws-test")
                .settings("region = \"us-east-1\""),
            Entry::new("app", "scim", &scim.base_url(), "app-token"),
        ],
        &[
            ("aws-test", &t.admin.credential()),
            ("app-token", &scim.token),
        ],
    );
    let mut ada = Person::new("E1", "Ada", "Lovelace", "ada@example.com");
    ada.department = "Research".into();
    ada.title = "Analyst".into();
    // scim2-server needs the group to exist for the membership.
    let client = reqwest::Client::new();
    client
        .post(format!("{}/Groups", scim.base_url()))
        .bearer_auth(&scim.token)
        .json(&serde_json::json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "none"}))
        .send()
        .await
        .unwrap();
    run.set_people(&[(ada.clone(), vec!["aws:group:everyone", "app:group:none"])]);
    let s = run.engine(fast()).run_until_idle(None).await.unwrap();
    assert_eq!(s.failed, 0, "{s:?} {:#?}", run.failed());
    // Unchanged person: nothing to update.
    assert_eq!(run.plan_apply(), 0);

    // She moves to Engineering with a new title.
    ada.department = "Engineering".into();
    ada.title = "Engineer".into();
    assert_eq!(
        run.set_people(&[(ada.clone(), vec!["aws:group:everyone", "app:group:none"])]),
        2
    );
    let details = last_plan_details(&run);
    for sys in ["aws", "app"] {
        let d = details
            .iter()
            .find(|(k, s, _)| k == "update_attributes" && s == sys)
            .unwrap_or_else(|| panic!("no update for {sys}: {details:?}"));
        assert!(
            d.2.contains("department: \"Research\" -> \"Engineering\"")
                && d.2.contains("title: \"Analyst\" -> \"Engineer\""),
            "{d:?}"
        );
    }
    let s = run.engine(fast()).run_until_idle(None).await.unwrap();
    assert_eq!(s.failed, 0, "{s:?} {:#?}", run.failed());
    assert_eq!(s.succeeded, 2);
    assert_eq!(run.plan_apply(), 0, "settled after the update");

    // IAM: the tags say so.
    let r = admin
        .call("ListUserTags", &[("UserName", "ada")])
        .await
        .unwrap();
    let keys = xml_all(&r.body, "Key");
    let values = xml_all(&r.body, "Value");
    let tag = |k: &str| values[keys.iter().position(|x| x == k).unwrap()].clone();
    assert_eq!(tag("accessdesk:department"), "Engineering");
    assert_eq!(tag("accessdesk:title"), "Engineer");
    // SCIM: the user's enterprise department and title.
    let users: serde_json::Value = client
        .get(format!("{}/Users", scim.base_url()))
        .bearer_auth(&scim.token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let u = &users["Resources"][0];
    assert_eq!(u["title"], "Engineer", "{u}");
    assert_eq!(
        u["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"]["department"],
        "Engineering",
        "{u}"
    );
    assert_eq!(
        u["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"]["employeeNumber"], "E1",
        "{u}"
    );
}

fn audit_actions(run: &Run, action: &str) -> Vec<String> {
    let s = run.store.lock().unwrap();
    let mut stmt = s
        .conn()
        .prepare("SELECT details FROM audit_events WHERE action = ?1 ORDER BY seq")
        .unwrap();
    stmt.query_map([action], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

fn login_of(run: &Run, system: &str, person: &str) -> String {
    let s = run.store.lock().unwrap();
    s.login_of(system, person).unwrap().unwrap().login
}

/// A new e-mail renames the login where it follows the e-mail and the vendor allows it
/// (scim2-server's userName, the Okta simulator's profile.login), and says plainly where
/// it does not (IAM: the user name is the id), while department, cost center, the
/// manager and the e-mail itself reach every target.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_email_change_renames_where_the_vendor_allows_it() {
    let t = MotoTarget::start().await;
    let admin = iam(&t.moto.url, &t.admin.credential(), "", SLOW);
    let scim = scim_server::ScimServer::start().await;
    let (okta_s, okta) = accessdesk::sim::okta::spawn(Default::default())
        .await
        .unwrap();
    okta.add_api_token("00movers-token");
    let run = Run::new(
        &[
            Entry::new("aws", "aws_iam", &t.moto.url, "aws-test")
                .settings("region = \"us-east-1\""),
            Entry::new("app", "scim", &scim.base_url(), "app-token"),
            Entry::new("idp", "okta", &okta_s.base_url(), "okta-token"),
        ],
        &[
            ("aws-test", &t.admin.credential()),
            ("app-token", &scim.token),
            ("okta-token", "00movers-token"),
        ],
    );
    let mut grace = Person::new("E0", "Grace", "Hopper", "grace@example.com");
    grace.department = "Research".into();
    let mut ada = Person::new("E1", "Ada", "Lovelace", "ada@example.com");
    ada.department = "Research".into();
    ada.cost_center = "CC-100".into();
    // Accounts are planned for systems a person has intended access in; memberships
    // in groups that exist.
    admin
        .call("CreateGroup", &[("GroupName", "everyone")])
        .await
        .unwrap();
    okta.seed_group("everyone");
    let client = reqwest::Client::new();
    client
        .post(format!("{}/Groups", scim.base_url()))
        .bearer_auth(&scim.token)
        .json(&serde_json::json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "everyone"}))
        .send()
        .await
        .unwrap();
    let ents = vec![
        "aws:group:everyone",
        "app:group:everyone",
        "idp:group:everyone",
    ];
    run.set_people(&[(grace.clone(), ents.clone()), (ada.clone(), ents.clone())]);
    let s = run.engine(fast()).run_until_idle(None).await.unwrap();
    assert_eq!(s.failed, 0, "{s:?} {:#?}", run.failed());

    // She moves to Engineering, under Grace, in another cost center, with a new e-mail.
    ada.department = "Engineering".into();
    ada.cost_center = "CC-200".into();
    ada.manager_id = Some("E0".into());
    ada.email = "ada.lovelace@example.com".into();
    assert_eq!(run.set_people(&[(ada.clone(), ents.clone())]), 3);
    let details = last_plan_details(&run);
    let detail = |sys: &str| {
        details
            .iter()
            .find(|(k, s, _)| k == "update_attributes" && s == sys)
            .unwrap_or_else(|| panic!("no update for {sys}: {details:?}"))
            .2
            .clone()
    };
    for sys in ["app", "idp"] {
        let d = detail(sys);
        assert!(
            d.contains("login: \"ada@example.com\" -> \"ada.lovelace@example.com\"")
                && d.contains("department: \"Research\" -> \"Engineering\"")
                && d.contains("costCenter: \"CC-100\" -> \"CC-200\"")
                && d.contains("manager: \"\" -> \"E0\""),
            "{d}"
        );
    }
    let d = detail("aws");
    assert!(
        d.contains("login stays \"ada\": AWS IAM user names are the users' ids")
            && d.contains("email: \"ada@example.com\" -> \"ada.lovelace@example.com\""),
        "{d}"
    );
    let s = run.engine(fast()).run_until_idle(None).await.unwrap();
    assert_eq!(s.failed, 0, "{s:?} {:#?}", run.failed());
    assert_eq!(s.succeeded, 3);
    assert_eq!(run.plan_apply(), 0, "settled after the update");

    // The store: renamed where the target renamed, audited; IAM's login stays.
    assert_eq!(login_of(&run, "app", "E1"), "ada.lovelace@example.com");
    assert_eq!(login_of(&run, "idp", "E1"), "ada.lovelace@example.com");
    assert_eq!(login_of(&run, "aws", "E1"), "ada");
    let renamed = audit_actions(&run, "login.renamed");
    assert_eq!(renamed.len(), 2, "{renamed:?}");
    assert!(
        renamed
            .iter()
            .all(|r| r.contains("\"old\":\"ada@example.com\"")
                && r.contains("\"new\":\"ada.lovelace@example.com\""))
    );

    // SCIM: userName, the enterprise department, cost center and manager (Grace's id).
    let users: serde_json::Value = client
        .get(format!("{}/Users", scim.base_url()))
        .bearer_auth(&scim.token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let all = users["Resources"].as_array().unwrap();
    let find = |n: &str| all.iter().find(|u| u["userName"] == n).cloned();
    let u = find("ada.lovelace@example.com").unwrap_or_else(|| panic!("{users}"));
    assert!(find("ada@example.com").is_none(), "{users}");
    let g = find("grace@example.com").unwrap();
    let ext = &u["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"];
    assert_eq!(ext["department"], "Engineering", "{u}");
    assert_eq!(ext["costCenter"], "CC-200", "{u}");
    assert_eq!(ext["manager"]["value"], g["id"], "{u}");
    assert_eq!(u["emails"][0]["value"], "ada.lovelace@example.com", "{u}");

    // Okta: the same user under the new login, with the new e-mail and manager.
    let o = okta.user_by_login("ada.lovelace@example.com").unwrap();
    assert_eq!(o.profile["email"], "ada.lovelace@example.com");
    assert_eq!(o.profile["department"], "Engineering");
    assert_eq!(o.profile["costCenter"], "CC-200");
    let og = okta.user_by_login("grace@example.com").unwrap();
    assert_eq!(o.profile["managerId"], serde_json::json!(og.id));
    assert!(okta.user_by_login("ada@example.com").is_none());

    // IAM: still "ada", with the new e-mail and department as tags.
    let r = admin
        .call("ListUserTags", &[("UserName", "ada")])
        .await
        .unwrap();
    let keys = xml_all(&r.body, "Key");
    let values = xml_all(&r.body, "Value");
    let tag = |k: &str| values[keys.iter().position(|x| x == k).unwrap()].clone();
    assert_eq!(tag("accessdesk:department"), "Engineering");
    assert_eq!(tag("accessdesk:costCenter"), "CC-200");
    assert_eq!(tag("accessdesk:email"), "ada.lovelace@example.com");
}

/// A rename onto a login another person holds is refused in the plan, with who holds
/// it; one the target already has (an account accessdesk does not know) fails the
/// update with a clear message. Either way nothing is renamed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rename_onto_a_taken_login_is_refused() {
    let (okta_s, okta) = accessdesk::sim::okta::spawn(Default::default())
        .await
        .unwrap();
    okta.add_api_token("00movers-token");
    okta.seed_group("everyone");
    let run = Run::new(
        &[Entry::new("idp", "okta", &okta_s.base_url(), "okta-token")],
        &[("okta-token", "00movers-token")],
    );
    let ents = vec!["idp:group:everyone"];
    let mut ada = Person::new("E1", "Ada", "Lovelace", "ada@example.com");
    let bob = Person::new("E2", "Bob", "Byron", "ada.byron@example.com");
    run.set_people(&[(ada.clone(), ents.clone()), (bob.clone(), ents.clone())]);
    let s = run.engine(fast()).run_until_idle(None).await.unwrap();
    assert_eq!(s.failed, 0, "{s:?} {:#?}", run.failed());

    // Ada's new e-mail would give her Bob's login (case does not matter).
    ada.email = "Ada.Byron@example.com".into();
    assert_eq!(run.set_people(&[(ada.clone(), ents.clone())]), 1);
    let details = last_plan_details(&run);
    assert!(
        details[0].2.contains(
            "login stays \"ada@example.com\": cannot rename to \"ada.byron@example.com\", which E2 holds in idp"
        ),
        "{details:?}"
    );
    let s = run.engine(fast()).run_until_idle(None).await.unwrap();
    assert_eq!(s.failed, 0, "{s:?} {:#?}", run.failed());
    assert_eq!(login_of(&run, "idp", "E1"), "ada@example.com");
    let o = okta.user_by_login("ada@example.com").unwrap();
    assert_eq!(o.profile["email"], "Ada.Byron@example.com");
    assert_eq!(
        okta.user_by_login("ada.byron@example.com").unwrap().profile["firstName"],
        "Bob"
    );

    // Someone made an account by hand under the login Cy's new e-mail gives: the store
    // does not know it, so the plan renames; the target refuses, and nothing is renamed.
    let mut cy = Person::new("E3", "Cy", "Young", "cy@example.com");
    run.set_people(&[(cy.clone(), ents.clone())]);
    let s = run.engine(fast()).run_until_idle(None).await.unwrap();
    assert_eq!(s.failed, 0, "{s:?} {:#?}", run.failed());
    okta.seed_user("cy.young@example.com", "Someone", "Else");
    cy.email = "cy.young@example.com".into();
    assert_eq!(run.set_people(&[(cy.clone(), ents.clone())]), 1);
    let s = run.engine(fast()).run_until_idle(None).await.unwrap();
    assert_eq!(s.failed, 1, "{s:?}");
    let failed = run.failed();
    let msg = failed[0].last_error_message.clone().unwrap_or_default();
    assert!(
        msg.contains(
            "cannot rename E3's login in idp from \"cy@example.com\" to \"cy.young@example.com\": another account there has it"
        ) && msg.contains("nothing was renamed"),
        "{msg}"
    );
    assert_eq!(login_of(&run, "idp", "E3"), "cy@example.com");
    assert!(okta.user_by_login("cy@example.com").is_some());
    assert!(audit_actions(&run, "login.renamed").is_empty());
}
