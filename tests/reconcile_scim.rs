//! Reconciliation against scim2-server (a real SCIM 2.0 service provider, a second
//! implementation beside our simulator): users and group members changed over SCIM
//! behind accessdesk's back are reported as exactly those findings, and enforcing them
//! brings the provider back to intended.

#[path = "common/engine.rs"]
mod engine;
#[path = "common/reconcile.rs"]
mod reconcile;
#[path = "common/scim_server.rs"]
mod scim_server;

use accessdesk::engine::findings;
use accessdesk::model::Person;
use engine::{Entry, Run, fast};
use reconcile::{seen, summary};
use serde_json::{Value, json};

struct Scim {
    base: String,
    token: String,
    client: reqwest::Client,
}

impl Scim {
    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut req = self
            .client
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let r = req.send().await.unwrap();
        let status = r.status();
        let text = r.text().await.unwrap();
        assert!(status.is_success(), "{path}: {status} {text}");
        serde_json::from_str(&text).unwrap_or(Value::Null)
    }

    async fn id_of(&self, what: &str, attr: &str, value: &str) -> String {
        let v = self
            .call(
                reqwest::Method::GET,
                &format!("/{what}?filter={attr}%20eq%20%22{value}%22"),
                None,
            )
            .await;
        v["Resources"][0]["id"]
            .as_str()
            .unwrap_or_else(|| panic!("no {what} {value}: {v}"))
            .to_string()
    }

    async fn group(&self, name: &str) -> String {
        let v = self
            .call(
                reqwest::Method::POST,
                "/Groups",
                Some(json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": name})),
            )
            .await;
        v["id"].as_str().unwrap().to_string()
    }

    async fn members(&self, group: &str, op: &str, user: &str) {
        let value = if op == "add" {
            json!([{"value": user}])
        } else {
            Value::Null
        };
        let mut operation = json!({"op": op, "path": "members"});
        if op == "add" {
            operation["value"] = value;
        } else {
            operation["path"] = json!(format!("members[value eq \"{user}\"]"));
        }
        self.call(
            reqwest::Method::PATCH,
            &format!("/Groups/{group}"),
            Some(json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": [operation]})),
        )
        .await;
    }

    /// Display names of the groups a user is in, sorted.
    async fn groups_of(&self, user: &str) -> Vec<String> {
        let v = self.call(reqwest::Method::GET, "/Groups", None).await;
        let mut out: Vec<String> = v["Resources"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|g| {
                g["members"]
                    .as_array()
                    .is_some_and(|m| m.iter().any(|m| m["value"] == user))
            })
            .map(|g| g["displayName"].as_str().unwrap().to_string())
            .collect();
        out.sort();
        out
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scim_changed_behind_our_back_is_found_and_enforced_back() {
    let server = scim_server::ScimServer::start().await;
    let scim = Scim {
        base: server.base_url(),
        token: server.token.clone(),
        client: reqwest::Client::new(),
    };
    for g in ["everyone", "admins", "unlisted"] {
        scim.group(g).await;
    }
    let run = Run::new(
        &[Entry::new("app", "scim", &server.base_url(), "app-token").settings(
            "[[systems.app.entitlements]]\nkind = \"group\"\nname = \"everyone\"\n\
             [[systems.app.entitlements]]\nkind = \"group\"\nname = \"admins\"\nrisk = \"privileged\"\n",
        )],
        &[("app-token", &server.token)],
    );
    let mut ada = Person::new("E1", "Ada", "Lovelace", "ada@example.com");
    ada.department = "Research".into();
    let mut bob = Person::new("E2", "Bob", "Ng", "bob@example.com");
    bob.department = "Sales".into();
    run.set_people(&[
        (ada, vec!["app:group:everyone"]),
        (bob, vec!["app:group:everyone"]),
    ]);
    let s = run.engine(fast()).run_until_idle(None).await.unwrap();
    assert_eq!(s.failed, 0, "{s:?} {:#?}", run.failed());
    let (_, f) = reconcile::reconcile(&run, "app").await;
    assert_eq!(summary(&f), vec![], "nothing drifted yet: {f:#?}");

    // Behind accessdesk's back, over SCIM: bob into admins, ada out of everyone, a user
    // made by hand, bob into a group the catalogue does not list, and ada's department.
    let ada_id = scim.id_of("Users", "userName", "ada@example.com").await;
    let bob_id = scim.id_of("Users", "userName", "bob@example.com").await;
    let admins = scim.id_of("Groups", "displayName", "admins").await;
    let everyone = scim.id_of("Groups", "displayName", "everyone").await;
    let unlisted = scim.id_of("Groups", "displayName", "unlisted").await;
    scim.members(&admins, "add", &bob_id).await;
    scim.members(&everyone, "remove", &ada_id).await;
    scim.members(&unlisted, "add", &bob_id).await;
    scim.call(
        reqwest::Method::POST,
        "/Users",
        Some(json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "hand.made@example.com", "active": true})),
    )
    .await;
    scim.call(
        reqwest::Method::PATCH,
        &format!("/Users/{ada_id}"),
        Some(json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": [
            {"op": "replace", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department", "value": "Finance"}
        ]})),
    )
    .await;

    let (_, f) = reconcile::reconcile(&run, "app").await;
    assert_eq!(
        summary(&f),
        vec![
            seen(
                "excess",
                Some("E2"),
                Some("bob@example.com"),
                Some("app:group:admins")
            ),
            seen("orphan", None, Some("hand.made@example.com"), None),
            seen(
                "unmanaged",
                Some("E2"),
                Some("bob@example.com"),
                Some("app:group:unlisted")
            ),
            seen(
                "missing",
                Some("E1"),
                Some("ada@example.com"),
                Some("app:group:everyone")
            ),
            seen("attribute_drift", Some("E1"), Some("ada@example.com"), None),
        ],
        "{f:#?}"
    );
    let out = {
        let mut s = run.store.lock().unwrap();
        findings::enforce(&mut s, &run.cfg.catalog, &f, "test").unwrap()
    };
    let enforced: Vec<&str> = out
        .iter()
        .filter(|o| o.status == "enforced")
        .map(|o| o.class.as_str())
        .collect();
    assert_eq!(
        enforced,
        vec!["excess", "orphan", "missing", "attribute_drift"],
        "{out:#?}"
    );
    let s = run.engine(fast()).run_until_idle(None).await.unwrap();
    assert_eq!(s.failed, 0, "{s:?} {:#?}", run.failed());

    // The provider is back to intended; the hand-made user is deactivated, not deleted;
    // the unlisted group stays.
    let hand = scim
        .call(
            reqwest::Method::GET,
            "/Users?filter=userName%20eq%20%22hand.made%40example.com%22",
            None,
        )
        .await;
    assert_eq!(hand["totalResults"], 1, "{hand}");
    assert_eq!(hand["Resources"][0]["active"], false, "{hand}");
    assert_eq!(scim.groups_of(&ada_id).await, vec!["everyone"]);
    assert_eq!(scim.groups_of(&bob_id).await, vec!["everyone", "unlisted"]);
    let u = scim
        .call(reqwest::Method::GET, &format!("/Users/{ada_id}"), None)
        .await;
    assert_eq!(
        u["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"]["department"], "Research",
        "{u}"
    );
    let (_, f) = reconcile::reconcile(&run, "app").await;
    assert_eq!(
        summary(&f),
        vec![seen(
            "unmanaged",
            Some("E2"),
            Some("bob@example.com"),
            Some("app:group:unlisted")
        ),],
        "{f:#?}"
    );
    assert_eq!(run.plan_apply(), 0, "nothing left to do");
    run.audit_ok();
}
