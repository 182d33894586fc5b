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
