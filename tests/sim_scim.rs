//! The SCIM simulator (src/sim/scim.rs) against our SCIM adapter, built through the
//! registry from a systems.toml entry as for a real provider.
//!
//! The contract bodies are the ones tests/scim_peer.rs runs against scim2-server
//! (tests/common/scim_contract.rs), once with every feature advertised and once with the
//! least a provider can offer; then what only the simulator has: its own faults and rate
//! limit, permanent rejections for triage, eventual consistency, counters of duplicate
//! creates, and the protocol details the adapter does not exercise (filters, PATCH paths,
//! ETags, bulk, error bodies).

#[path = "common/scim_contract.rs"]
mod contract;
#[path = "common/engine.rs"]
mod engine;
#[path = "common/scim_server.rs"]
mod scim_server;

use accessdesk::adapters::http::RateLimiter;
use accessdesk::adapters::prelude::*;
use accessdesk::adapters::registry::{AdapterContext, build_with};
use accessdesk::adapters::{ErrorClass, collect_all};
use accessdesk::sim::fault::FaultProfile;
use accessdesk::sim::scim::ScimSimOptions;
use contract::{
    Keychain, SYSTEM, ScimTarget, SimScim, adapter, config, group, short_timeouts, spec,
};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

async fn full() -> SimScim {
    SimScim::start(ScimSimOptions::default()).await
}

async fn minimal() -> SimScim {
    SimScim::start(ScimSimOptions::minimal(7)).await
}

fn http() -> reqwest::Client {
    accessdesk::adapters::http::install_crypto_provider();
    reqwest::Client::builder().no_proxy().build().unwrap()
}

/// One raw request: (status, headers, JSON body or Null).
async fn call(
    sim: &SimScim,
    method: &str,
    path: &str,
    body: Option<Value>,
    extra: &[(&str, &str)],
) -> (u16, reqwest::header::HeaderMap, Value) {
    let mut r = http()
        .request(method.parse().unwrap(), format!("{}{path}", sim.base_url()))
        .bearer_auth(&sim.token)
        .header("content-type", "application/scim+json");
    for (k, v) in extra {
        r = r.header(*k, *v);
    }
    if let Some(b) = body {
        r = r.body(b.to_string());
    }
    let resp = r.send().await.unwrap();
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let bytes = resp.bytes().await.unwrap();
    (
        status,
        headers,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

fn assert_scim_error(v: &Value, status: u16, scim_type: Option<&str>) {
    assert_eq!(
        v["schemas"],
        json!(["urn:ietf:params:scim:api:messages:2.0:Error"]),
        "{v}"
    );
    assert_eq!(
        v["status"],
        json!(status.to_string()),
        "status is a string: {v}"
    );
    assert_eq!(v["scimType"].as_str(), scim_type, "{v}");
    assert!(v["detail"].as_str().is_some_and(|d| !d.is_empty()), "{v}");
}

// -- the shared contract -------------------------------------------------------------------

#[tokio::test]
async fn contract_lifecycle_with_patch_and_filters() {
    let sim = full().await;
    contract::lifecycle(&sim, &adapter(&sim, "")).await;
    let (methods, filtered) = contract::methods_seen(&sim);
    assert!(methods.contains("PATCH") && filtered, "{methods:?}");
    assert!(!methods.contains("PUT"), "{methods:?}");
}

#[tokio::test]
async fn contract_lifecycle_with_put_and_scans() {
    let sim = minimal().await;
    contract::lifecycle(&sim, &adapter(&sim, "")).await;
    let (methods, filtered) = contract::methods_seen(&sim);
    assert!(
        methods.contains("PUT") && !methods.contains("PATCH"),
        "{methods:?}"
    );
    assert!(!filtered);
    assert!(
        !sim.requests().iter().any(|r| r.contains("\" 501 ")),
        "nothing unadvertised was tried: {:?}",
        sim.requests()
    );
}

#[tokio::test]
async fn contract_duplicate_create_is_a_conflict() {
    let sim = full().await;
    contract::duplicate_create(&sim).await;
    assert_eq!(sim.handle.max_creates_per_user(), 1);
}

#[tokio::test]
async fn contract_memberships_with_patch_and_filters() {
    let sim = full().await;
    contract::memberships(&sim, &adapter(&sim, "")).await;
    assert!(sim.handle.max_membership_adds() <= 1);
}

#[tokio::test]
async fn contract_memberships_without_patch_or_filter() {
    let sim = minimal().await;
    contract::memberships(&sim, &adapter(&sim, "")).await;
    let (methods, filtered) = contract::methods_seen(&sim);
    assert!(!methods.contains("PATCH") && !filtered, "{methods:?}");
}

#[tokio::test]
async fn contract_paging_10_at_a_time_and_at_max_results() {
    let sim = full().await;
    contract::paging(&sim, &adapter(&sim, "page_size = 10"), 10).await;
    assert!(
        sim.requests()
            .iter()
            .any(|r| r.contains("startIndex=21&count=10")),
        "{:?}",
        sim.requests()
    );
    let sim = minimal().await;
    contract::paging(&sim, &adapter(&sim, "page_size = 10"), 7).await;
}

#[tokio::test]
async fn contract_reconciliation_reads_with_filters() {
    let sim = full().await;
    contract::reconciliation_reads(&sim, &adapter(&sim, "page_size = 2")).await;
}

#[tokio::test]
async fn contract_reconciliation_reads_without_filter_or_patch() {
    let sim = minimal().await;
    contract::reconciliation_reads(&sim, &adapter(&sim, "page_size = 2")).await;
    let (methods, filtered) = contract::methods_seen(&sim);
    assert!(!methods.contains("PATCH") && !filtered, "{methods:?}");
}

#[tokio::test]
async fn contract_wrong_token() {
    contract::wrong_token(&full().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn contract_faults_through_the_proxy_converge() {
    let sim = full().await;
    contract::faults_converge(&sim).await;
    assert_eq!(sim.handle.max_creates_per_user(), 1, "no duplicate create");
    assert_eq!(
        sim.handle.max_membership_adds(),
        1,
        "no membership added twice"
    );
}

// -- what only the simulator has -----------------------------------------------------------

#[tokio::test]
async fn the_registry_builds_the_adapter_and_discovery_reflects_the_options() {
    let sim = SimScim::start(ScimSimOptions {
        bulk: true,
        max_results: 50,
        ..ScimSimOptions::default()
    })
    .await;
    let cfg = config(&sim.base_url(), "");
    let keychain = Keychain(sim.token.clone());
    let a = build_with(AdapterContext {
        entry: &cfg.catalog.systems[SYSTEM],
        secrets: &keychain,
        limiter: RateLimiter::new(SYSTEM, None, 4),
        timeouts: short_timeouts(),
    })
    .expect("the registry builds the scim adapter");
    let id = a.authenticate().await.expect("authenticate");
    assert_eq!(
        id.scopes,
        [
            "patch",
            "filter(maxResults=50)",
            "sort",
            "etag",
            "bulk",
            "enterpriseUser"
        ]
    );
    assert_eq!(id.details["writes"], "PATCH");
    assert_eq!(id.details["page_size"], "50");
    assert!(
        id.details["identity"].contains("/Me answered HTTP 501"),
        "{:?}",
        id.details
    );

    let id = adapter(&minimal().await, "").authenticate().await.unwrap();
    assert_eq!(id.scopes, ["etag", "enterpriseUser"]);
    assert_eq!(id.details["writes"], "GET + PUT with If-Match");
    assert_eq!(id.details["page_size"], "7");

    // Discovery documents.
    let (s, _, rt) = call(&sim, "GET", "/ResourceTypes", None, &[]).await;
    assert_eq!(s, 200);
    assert_eq!(rt["totalResults"], 2);
    assert_eq!(rt["Resources"][0]["endpoint"], "/Users");
    let (s, _, schema) = call(
        &sim,
        "GET",
        "/Schemas/urn:ietf:params:scim:schemas:core:2.0:User",
        None,
        &[],
    )
    .await;
    assert_eq!(s, 200);
    assert!(
        schema["attributes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["name"] == "userName" && a["uniqueness"] == "server")
    );
    let (s, _, e) = call(&sim, "GET", "/Schemas?filter=id%20pr", None, &[]).await;
    assert_eq!(s, 403);
    assert_scim_error(&e, 403, None);
}

#[tokio::test]
async fn errors_are_scim_error_bodies_and_auth_is_required() {
    let sim = full().await;
    // No token, a wrong token, a revoked token.
    let r = http()
        .get(format!("{}/Users", sim.base_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
    assert!(
        r.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Bearer")
    );
    assert_scim_error(&r.json().await.unwrap(), 401, None);
    sim.handle.revoke_token(&sim.token);
    let (s, _, _) = call(&sim, "GET", "/ServiceProviderConfig", None, &[]).await;
    assert_eq!(s, 401);
    sim.handle.add_token(&sim.token);

    let user =
        json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "bjensen"});
    let (s, h, u) = call(&sim, "POST", "/Users", Some(user.clone()), &[]).await;
    assert_eq!(s, 201);
    assert_eq!(h["content-type"], "application/scim+json");
    assert_eq!(
        h["location"].to_str().unwrap(),
        u["meta"]["location"].as_str().unwrap()
    );
    assert_eq!(
        h["etag"].to_str().unwrap(),
        u["meta"]["version"].as_str().unwrap()
    );
    assert_eq!(u["meta"]["resourceType"], "User");
    assert!(u["meta"]["created"].is_string() && u["meta"]["lastModified"].is_string());
    for (body, status, t) in [
        (user.clone(), 409, Some("uniqueness")),
        (
            json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "BJENSEN"}),
            409,
            Some("uniqueness"),
        ),
        (json!({"userName": "x"}), 400, Some("invalidSyntax")),
        (
            json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"]}),
            400,
            Some("invalidValue"),
        ),
        (
            json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "y", "active": "yes"}),
            400,
            Some("invalidValue"),
        ),
        (json!(["not", "an", "object"]), 400, Some("invalidSyntax")),
    ] {
        let (s, _, e) = call(&sim, "POST", "/Users", Some(body.clone()), &[]).await;
        assert_eq!(s, status, "{body}");
        assert_scim_error(&e, status, t);
    }
    let (s, _, e) = call(&sim, "GET", "/Users/nope", None, &[]).await;
    assert_eq!(s, 404);
    assert_scim_error(&e, 404, None);
    let (s, _, e) = call(
        &sim,
        "GET",
        "/Users?filter=userName%20zz%20%22x%22",
        None,
        &[],
    )
    .await;
    assert_eq!(s, 400);
    assert_scim_error(&e, 400, Some("invalidFilter"));
    let (s, _, e) = call(&sim, "GET", "/Users?count=lots", None, &[]).await;
    assert_eq!(s, 400);
    assert_scim_error(&e, 400, Some("invalidValue"));
    let (s, _, e) = call(&sim, "GET", "/Widgets", None, &[]).await;
    assert_eq!(s, 404);
    assert_scim_error(&e, 404, None);
    // Unadvertised features are refused with 501.
    let m = minimal().await;
    for (method, path, body) in [
        ("GET", "/Users?filter=userName%20eq%20%22a%22", None),
        ("GET", "/Users?sortBy=userName", None),
        ("PATCH", "/Users/x", Some(json!({}))),
        ("POST", "/Bulk", Some(json!({}))),
    ] {
        let (s, _, e) = call(&m, method, path, body, &[]).await;
        assert_eq!(s, 501, "{method} {path}");
        assert_scim_error(&e, 501, None);
    }
}

#[tokio::test]
async fn filters_paging_sorting_and_projection() {
    let sim = full().await;
    for (i, (name, dept)) in [
        ("ada", "R&D"),
        ("Bob", "Sales"),
        ("carol", "R&D"),
        ("dave", "Ops"),
    ]
    .iter()
    .enumerate()
    {
        let body = json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"],
            "userName": format!("{name}@example.com"), "externalId": format!("E{i}"),
            "active": i != 3,
            "emails": [{"value": format!("{name}@example.com"), "type": "work", "primary": true}],
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"department": dept},
        });
        assert_eq!(call(&sim, "POST", "/Users", Some(body), &[]).await.0, 201);
    }
    let names = |v: &Value| -> Vec<String> {
        v["Resources"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|u| u["userName"].as_str().unwrap_or("").to_string())
                    .collect()
            })
            .unwrap_or_default()
    };
    let list = |q: &'static str| {
        let sim = &sim;
        async move {
            let (s, _, v) = call(sim, "GET", &format!("/Users?{q}"), None, &[]).await;
            assert_eq!(s, 200, "{q}: {v}");
            v
        }
    };
    // userName is case-insensitive, externalId case-exact.
    let v = list("filter=userName%20eq%20%22BOB%40example.com%22").await;
    assert_eq!(
        (v["totalResults"].as_u64(), names(&v)),
        (Some(1), vec!["Bob@example.com".to_string()])
    );
    assert_eq!(
        list("filter=externalId%20eq%20%22e1%22").await["totalResults"],
        0
    );
    assert_eq!(
        list("filter=externalId%20eq%20%22E1%22").await["totalResults"],
        1
    );
    let v = list("filter=urn%3Aietf%3Aparams%3Ascim%3Aschemas%3Aextension%3Aenterprise%3A2.0%3AUser%3Adepartment%20eq%20%22r%26d%22%20and%20active%20eq%20true").await;
    assert_eq!(names(&v), ["ada@example.com", "carol@example.com"]);
    let v = list("filter=emails%5Btype%20eq%20%22work%22%20and%20value%20sw%20%22c%22%5D").await;
    assert_eq!(names(&v), ["carol@example.com"]);
    let v = list("filter=not%20(active%20eq%20true)").await;
    assert_eq!(names(&v), ["dave@example.com"]);
    // Paging: totalResults is the whole set, startIndex 1-based.
    let v = list("startIndex=2&count=2").await;
    assert_eq!(
        (
            v["totalResults"].as_u64(),
            v["startIndex"].as_u64(),
            v["itemsPerPage"].as_u64()
        ),
        (Some(4), Some(2), Some(2))
    );
    assert_eq!(names(&v), ["Bob@example.com", "carol@example.com"]);
    let v = list("startIndex=4&count=10").await;
    assert_eq!(names(&v), ["dave@example.com"]);
    let v = list("count=0").await;
    assert_eq!(v["totalResults"], 4);
    assert!(v.get("Resources").is_none());
    // Sorting (userName is case-insensitive), descending too.
    let v = list("sortBy=userName&sortOrder=descending").await;
    assert_eq!(
        names(&v),
        [
            "dave@example.com",
            "carol@example.com",
            "Bob@example.com",
            "ada@example.com"
        ]
    );
    // Projection: id and schemas always; excludedAttributes.
    let v = list("attributes=userName&count=1").await;
    let u = &v["Resources"][0];
    assert!(u["id"].is_string() && u["schemas"].is_array() && u["userName"].is_string());
    assert!(u.get("emails").is_none() && u.get("meta").is_none());
    let v = list("excludedAttributes=emails,meta&count=1").await;
    assert!(v["Resources"][0].get("emails").is_none() && v["Resources"][0]["active"].is_boolean());
    // POST /.search is the same query in a body.
    let (s, _, v) = call(
        &sim,
        "POST",
        "/Users/.search",
        Some(
            json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],
                    "filter": "userName sw \"c\"", "attributes": ["userName"]}),
        ),
        &[],
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(names(&v), ["carol@example.com"]);
    // maxResults caps count.
    let small = SimScim::start(ScimSimOptions {
        max_results: 3,
        ..ScimSimOptions::default()
    })
    .await;
    for i in 0..5 {
        let body = json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": format!("u{i}")});
        call(&small, "POST", "/Users", Some(body), &[]).await;
    }
    let (_, _, v) = call(&small, "GET", "/Users?count=100", None, &[]).await;
    assert_eq!(
        (v["totalResults"].as_u64(), v["itemsPerPage"].as_u64()),
        (Some(5), Some(3))
    );
}

#[tokio::test]
async fn patch_put_etags_delete_and_bulk() {
    let sim = SimScim::start(ScimSimOptions {
        bulk: true,
        ..ScimSimOptions::default()
    })
    .await;
    let (_, _, u) = call(&sim, "POST", "/Users", Some(json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "ada", "name": {"givenName": "Ada"}})), &[]).await;
    let uid = u["id"].as_str().unwrap().to_string();
    let v1 = u["meta"]["version"].as_str().unwrap().to_string();
    let (_, _, g) = call(&sim, "POST", "/Groups", Some(json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "eng", "members": [{"value": uid}]})), &[]).await;
    let gid = g["id"].as_str().unwrap().to_string();
    assert_eq!(g["members"][0]["type"], "User");
    assert!(
        g["members"][0]["$ref"]
            .as_str()
            .is_some_and(|r| r.ends_with(&format!("/Users/{uid}")))
    );
    // User.groups is kept in sync.
    let (_, _, u) = call(&sim, "GET", &format!("/Users/{uid}"), None, &[]).await;
    assert_eq!(u["groups"][0]["value"], gid.as_str());

    let patch = |ops: Value| json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": ops});
    // A stale If-Match is refused; the current one works and bumps the version.
    let (s, _, _) = call(
        &sim,
        "PATCH",
        &format!("/Users/{uid}"),
        Some(patch(
            json!([{"op": "replace", "path": "active", "value": false}]),
        )),
        &[("if-match", "W/\"999\"")],
    )
    .await;
    assert_eq!(s, 412);
    let (s, h, u) = call(
        &sim,
        "PATCH",
        &format!("/Users/{uid}"),
        Some(patch(json!([
            {"op": "replace", "path": "active", "value": false},
            {"op": "add", "path": "name.familyName", "value": "Lovelace"},
            {"op": "add", "value": {"emails": [{"value": "ada@x", "type": "work"}]}}
        ]))),
        &[("if-match", &v1)],
    )
    .await;
    assert_eq!(s, 200, "{u}");
    assert_eq!(u["active"], false);
    assert_eq!(
        u["name"],
        json!({"givenName": "Ada", "familyName": "Lovelace"})
    );
    assert_ne!(h["etag"].to_str().unwrap(), v1);
    // A failing operation changes nothing (PATCH is atomic).
    let (s, _, e) = call(
        &sim,
        "PATCH",
        &format!("/Users/{uid}"),
        Some(patch(json!([
            {"op": "replace", "path": "displayName", "value": "changed"},
            {"op": "replace", "path": "emails[type eq \"home\"].value", "value": "x"}
        ]))),
        &[],
    )
    .await;
    assert_eq!(s, 400);
    assert_scim_error(&e, 400, Some("noTarget"));
    let (_, _, u) = call(&sim, "GET", &format!("/Users/{uid}"), None, &[]).await;
    assert!(u.get("displayName").is_none());
    // PUT replaces; read-only attributes in the body are ignored.
    let (s, _, u) = call(&sim, "PUT", &format!("/Users/{uid}"), Some(json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "id": "forged", "userName": "ada", "title": "Countess"})), &[]).await;
    assert_eq!(s, 200);
    assert_eq!(
        (u["id"].as_str(), u["title"].as_str()),
        (Some(uid.as_str()), Some("Countess"))
    );
    assert!(u.get("name").is_none(), "PUT replaced everything");
    // Group members: remove by filter; removing a non-member is a success.
    for _ in 0..2 {
        let (s, _, _) = call(
            &sim,
            "PATCH",
            &format!("/Groups/{gid}"),
            Some(patch(
                json!([{"op": "remove", "path": format!("members[value eq \"{uid}\"]")}]),
            )),
            &[],
        )
        .await;
        assert_eq!(s, 200);
    }
    assert!(sim.handle.members(&gid).is_empty());
    let (s, _, e) = call(
        &sim,
        "PATCH",
        &format!("/Groups/{gid}"),
        Some(patch(
            json!([{"op": "add", "path": "members", "value": [{"value": "no-such-user"}]}]),
        )),
        &[],
    )
    .await;
    assert_eq!(s, 400);
    assert_scim_error(&e, 400, Some("invalidValue"));
    // DELETE removes the user from groups too.
    call(
        &sim,
        "PATCH",
        &format!("/Groups/{gid}"),
        Some(patch(
            json!([{"op": "add", "path": "members", "value": [{"value": uid}]}]),
        )),
        &[],
    )
    .await;
    assert_eq!(sim.handle.members(&gid), vec![uid.clone()]);
    let (s, _, _) = call(&sim, "DELETE", &format!("/Users/{uid}"), None, &[]).await;
    assert_eq!(s, 204);
    assert!(sim.handle.members(&gid).is_empty());
    assert_eq!(
        call(&sim, "DELETE", &format!("/Users/{uid}"), None, &[])
            .await
            .0,
        404
    );

    // Bulk: a user and a group referring to it by bulkId.
    let (s, _, r) = call(&sim, "POST", "/Bulk", Some(json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"],
        "Operations": [
            {"method": "POST", "path": "/Users", "bulkId": "q1", "data": {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "alice"}},
            {"method": "POST", "path": "/Groups", "bulkId": "q2", "data": {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "guides", "members": [{"type": "User", "value": "bulkId:q1"}]}},
            {"method": "POST", "path": "/Users", "data": {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "alice"}}
        ]
    })), &[]).await;
    assert_eq!(s, 200, "{r}");
    let ops = r["Operations"].as_array().unwrap();
    assert_eq!(
        (
            ops[0]["status"].as_str(),
            ops[1]["status"].as_str(),
            ops[2]["status"].as_str()
        ),
        (Some("201"), Some("201"), Some("409"))
    );
    let alice = sim.handle.user_by_name("alice").unwrap();
    let guides = sim.handle.group_by_name("guides").unwrap();
    assert_eq!(guides.member_ids(), vec![alice.id]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_become_visible_after_the_visibility_delay() {
    let sim = SimScim::start(ScimSimOptions {
        faults: FaultProfile {
            visibility_delay: Duration::from_millis(600),
            ..FaultProfile::none()
        },
        ..ScimSimOptions::default()
    })
    .await;
    let gid = sim.handle.seed_group("eng");
    let a = adapter(&sim, "");
    let s = spec(1, "lag");
    let created = a.create_account(&s).await.unwrap();
    assert!(
        a.get_account(&created.external_id).await.unwrap().is_none(),
        "not visible yet"
    );
    assert!(a.get_account_by_login(&s.login).await.unwrap().is_none());
    // Writes see the true state: a second create is refused at once.
    assert_eq!(
        a.create_account(&s).await.unwrap_err().class,
        ErrorClass::Conflict
    );
    a.add_membership(&created.external_id, &group("eng"))
        .await
        .unwrap();
    assert_eq!(sim.handle.members(&gid), vec![created.external_id.clone()]);
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert!(a.get_account(&created.external_id).await.unwrap().is_some());
    let t = Instant::now();
    loop {
        let ms = a.list_memberships(&created.external_id).await.unwrap();
        if ms.len() == 1 {
            break;
        }
        assert!(
            t.elapsed() < Duration::from_secs(2),
            "membership never became visible"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rejected_user_is_a_permanent_error_with_the_scim_type() {
    let sim = full().await;
    sim.handle.reject_user(
        "rejected.user1@example.com",
        "invalidValue",
        "title contains characters this provider refuses",
    );
    let a = adapter(&sim, "");
    let mut s = spec(1, "rejected");
    for _ in 0..2 {
        let e = a.create_account(&s).await.unwrap_err();
        assert_eq!(e.class, ErrorClass::Permanent, "{e}");
        assert_eq!(
            (e.status, e.vendor_code.as_deref()),
            (Some(400), Some("invalidValue"))
        );
        assert!(e.message.contains("title contains"), "{e}");
    }
    assert_eq!(sim.handle.creates_for(&s.login), 0);
    // Other users are not affected.
    s.login = "someone.else@example.com".into();
    a.create_account(&s).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rate_limit_is_a_429_with_retry_after_that_the_adapter_waits_out() {
    let sim = SimScim::start(ScimSimOptions {
        rate_limit: Some(5),
        rate_window: Duration::from_secs(1),
        ..ScimSimOptions::default()
    })
    .await;
    // Five a window: within twelve requests (at most two windows) one is refused.
    let mut refused = None;
    for _ in 0..12 {
        let r = call(&sim, "GET", "/Users", None, &[]).await;
        if r.0 == 429 {
            refused = Some(r);
            break;
        }
    }
    let (s, h, e) = refused.expect("the rate limit never refused a request");
    assert_eq!(s, 429);
    assert!(h["retry-after"].to_str().unwrap().parse::<u64>().unwrap() >= 1);
    assert_scim_error(&e, 429, None);
    // The adapter waits for Retry-After and gets through.
    let a = adapter(&sim, "page_size = 2");
    for i in 0..6 {
        a.create_account(&spec(i, "rl")).await.unwrap();
    }
    let all = collect_all(|c| a.list_accounts(c), 3).await.unwrap();
    assert_eq!(all.len(), 6);
    assert!(sim.handle.limits().refused() > 0);
}

/// The engine against the simulator's own faults (10% mixed, lost responses), with
/// verification on: everything converges, nothing is created or added twice, and the
/// person the provider refuses fails Permanent with the reason.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_engine_converges_through_the_sims_own_faults_without_duplicates() {
    let sim = SimScim::start(ScimSimOptions {
        faults: FaultProfile {
            timeout_delay: Duration::from_secs(2),
            ..FaultProfile::mixed(0.10, 42)
        },
        lost_response_rate: 0.02,
        ..ScimSimOptions::default()
    })
    .await;
    for g in ["everyone", "engineering"] {
        sim.handle.seed_group(g);
    }
    // One person the provider refuses: a failure for the admin to triage.
    sim.handle.reject_user(
        "f7@example.com",
        "invalidValue",
        "userName is on the provider's block list",
    );
    let entry = engine::Entry::new("app", "scim", &sim.base_url(), "scim-app").verify(true);
    let run = engine::Run::new(&[entry], &[("scim-app", &sim.token)]);
    run.intend(20, &["app"]);
    // f7: its create fails for good; its membership waits behind it.
    run.run_with_one_refusal(19 + 19 + 10, "block list").await;
    let (_, injected) = sim.handle.faults().counts();
    assert!(injected > 0, "no faults were injected");
    let people = sim.handle.users();
    assert_eq!(people.len(), 19);
    assert_eq!(
        sim.handle.max_creates_per_user(),
        1,
        "an account was created twice"
    );
    assert_eq!(
        sim.handle.max_membership_adds(),
        1,
        "a membership was added twice"
    );
    let eng = sim.handle.group_by_name("engineering").unwrap();
    assert_eq!(eng.member_ids().len(), 10);
    let everyone = sim.handle.group_by_name("everyone").unwrap();
    assert_eq!(everyone.member_ids().len(), 19);
}
