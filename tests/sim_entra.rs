//! The Microsoft Entra ID simulator (src/sim/entra) over raw HTTP: the client-credentials
//! token endpoint, every Graph route and its refusals, paging with inserts in between,
//! throttling, faults, eventual consistency, token revocation and expiry, permissions and
//! deprecation headers. Every JSON object the simulator answers for users, groups,
//! members, memberOf and applications is checked against Graph's CSDL
//! (`tests/specs/msgraph/v1.0-Prod.csdl`): each property declared on the entity type or
//! its bases (or an `@odata.*` annotation), each value of its EDM type, no null where the
//! CSDL says `Nullable="false"`.

#[path = "common/csdl.rs"]
mod csdl;

use accessdesk::sim::SimServer;
use accessdesk::sim::entra::{
    self, BodyFault, Deprecation, EntraHandle, EntraSimOptions, FailRule, GRAPH_SCOPE,
};
use accessdesk::sim::fault::FaultProfile;
use axum::http::Method;
use csdl::csdl;
use reqwest::header::HeaderMap;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

const CLIENT: &str = "11111111-2222-4333-8444-555555555555";
const SECRET: &str = "Sim~secret-value-0123456789";
const ALL_ROLES: &[&str] = &[
    "User.ReadWrite.All",
    "GroupMember.ReadWrite.All",
    "Group.Read.All",
    "Application.Read.All",
];
const NOT_FOUND: &str = "404 Request_ResourceNotFound";
const BAD: &str = "400 Request_BadRequest";
const DENIED: &str =
    "403 Authorization_RequestDenied: Insufficient privileges to complete the operation.";
const BAD_TOKEN: &str = "401 InvalidAuthenticationToken";

// ---------------------------------------------------------------------------------------
// The CSDL checker (tests/common/csdl.rs)
// ---------------------------------------------------------------------------------------

#[test]
fn the_csdl_checker_reports_wrong_properties_types_and_nulls() {
    let c = csdl();
    assert!(
        c.derives_from("microsoft.graph.user", "microsoft.graph.entity"),
        "user -> directoryObject -> entity"
    );
    let good = json!({"id": "x", "deletedDateTime": null, "accountEnabled": true, "businessPhones": ["1"],
        "employeeOrgData": {"costCenter": "C1", "division": null}, "createdDateTime": "2026-01-02T03:04:05Z",
        "@odata.type": "#microsoft.graph.user"});
    let mut out = Vec::new();
    c.check_object("microsoft.graph.directoryObject", &good, "u", &mut out);
    assert!(out.is_empty(), "{out:?}");
    let bad = json!({"id": null, "favouriteColour": "blue", "accountEnabled": "yes",
        "createdDateTime": "yesterday", "businessPhones": "555", "employeeOrgData": {"costCenter": 5},
        "memberOf": [], "passwordProfile": {"password": 1}});
    c.check_object("microsoft.graph.user", &bad, "u", &mut out);
    let mut found: Vec<&str> = out
        .iter()
        .map(|p| p.split(':').next().unwrap_or(""))
        .collect();
    found.sort();
    assert_eq!(
        found,
        [
            "u.accountEnabled",
            "u.businessPhones",
            "u.createdDateTime",
            "u.employeeOrgData.costCenter",
            "u.favouriteColour",
            "u.id",
            "u.memberOf",
            "u.passwordProfile.password"
        ],
        "{out:#?}"
    );
    let mut out = Vec::new();
    c.check_object(
        "microsoft.graph.user",
        &json!({"@odata.type": "#microsoft.graph.group"}),
        "u",
        &mut out,
    );
    c.check_object(
        "microsoft.graph.application",
        &json!({"passwordCredentials": [{"keyId": "nope"}]}),
        "a",
        &mut out,
    );
    assert_eq!(out.len(), 2, "{out:?}");
}

// ---------------------------------------------------------------------------------------
// The harness
// ---------------------------------------------------------------------------------------

/// Every object answered, by the entity type it must be, for the CSDL check at the end.
type Seen = Arc<Mutex<Vec<(String, String, Value)>>>;

struct Sim {
    server: SimServer,
    h: EntraHandle,
    http: reqwest::Client,
    token: String,
    seen: Seen,
}

fn opts(change: impl FnOnce(&mut EntraSimOptions)) -> EntraSimOptions {
    let mut o = EntraSimOptions::default();
    change(&mut o);
    o
}

/// The entity type a Graph path answers with.
fn entity_of(path: &str) -> Option<&'static str> {
    let segs: Vec<&str> = path.trim_start_matches("/v1.0/").split('/').collect();
    Some(match segs.as_slice() {
        ["users"] | ["users", _] => "microsoft.graph.user",
        ["groups"] | ["groups", _] => "microsoft.graph.group",
        ["groups", _, "members"] | ["users", _, "memberOf"] => "microsoft.graph.directoryObject",
        ["applications"] => "microsoft.graph.application",
        _ => return None,
    })
}

/// An answer: status, headers, body (Null when empty or not JSON).
struct Answer {
    status: u16,
    headers: HeaderMap,
    body: Value,
}

impl Answer {
    /// `"status"`, `"status code"` or `"status code: message"`.
    fn summary(&self) -> String {
        let e = &self.body["error"];
        match (e["code"].as_str(), e["message"].as_str()) {
            (Some(c), Some(m)) => format!("{} {c}: {m}", self.status),
            _ => self.status.to_string(),
        }
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

impl Sim {
    async fn start(o: EntraSimOptions) -> Sim {
        accessdesk::adapters::http::install_crypto_provider();
        let (server, h) = entra::spawn(o).await.expect("simulator");
        h.register_app(CLIENT, SECRET, ALL_ROLES);
        let token = h.issue_token(CLIENT).expect("token");
        Sim {
            server,
            h,
            http: reqwest::Client::new(),
            token,
            seen: Seen::default(),
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.server.base_url())
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
        token: Option<&str>,
    ) -> Answer {
        let url = if path.starts_with("http") {
            path.to_string()
        } else {
            self.url(path)
        };
        let mut req = self.http.request(method, &url);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let r = req.send().await.expect("an answer");
        let (status, headers) = (r.status().as_u16(), r.headers().clone());
        let text = r.text().await.unwrap_or_default();
        let body: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        let path = url::Url::parse(&url)
            .map(|u| u.path().to_string())
            .unwrap_or_default();
        if path.starts_with("/v1.0/") {
            assert_eq!(
                headers.get("x-ms-resource-unit").map(|v| v.as_bytes()),
                Some(&b"1"[..]),
                "{path}"
            );
            assert!(headers.contains_key("request-id"), "{path}");
        }
        if status >= 400 && path.starts_with("/v1.0/") {
            let inner = &body["error"]["innerError"];
            assert!(
                body["error"]["code"].is_string() && body["error"]["message"].is_string(),
                "{body}"
            );
            for k in ["date", "request-id", "client-request-id"] {
                assert!(inner[k].is_string(), "{path}: innerError.{k} in {body}");
            }
            assert_eq!(
                inner["request-id"].as_str(),
                headers.get("request-id").and_then(|v| v.to_str().ok())
            );
        }
        if (200..300).contains(&status) {
            self.record(&path, &body);
        }
        Answer {
            status,
            headers,
            body,
        }
    }

    /// Keep an answer's objects for the CSDL check.
    fn record(&self, path: &str, body: &Value) {
        let Some(ty) = entity_of(path) else { return };
        let mut seen = self.seen.lock().unwrap();
        let mut keep = |v: &Value| seen.push((ty.to_string(), path.to_string(), v.clone()));
        match body.get("value").and_then(Value::as_array) {
            Some(items) => {
                for k in body.as_object().into_iter().flat_map(|o| o.keys()) {
                    assert!(
                        k == "value" || k.starts_with("@odata."),
                        "{path}: collection key {k}"
                    );
                }
                items.iter().for_each(&mut keep);
            }
            None if body.is_object() => keep(body),
            None => {}
        }
    }

    /// One call with the test's token, whose summary must start with `want`.
    async fn check(&self, method: Method, path: &str, body: Option<Value>, want: &str) -> Answer {
        let a = self
            .send(method.clone(), path, body, Some(&self.token))
            .await;
        assert!(
            a.summary().starts_with(want),
            "{method} {path}: want {want}, got {} {}",
            a.summary(),
            a.body
        );
        a
    }

    /// `POST /v1.0/users` of [`new_user`]; the new id.
    async fn create(&self, upn: &str, employee_id: Option<&str>) -> String {
        let a = self.check(
            Method::POST,
            "/v1.0/users",
            Some(new_user(upn, employee_id)),
            "201",
        );
        a.await.body["id"].as_str().expect("an id").to_string()
    }

    async fn get(&self, path: &str, want: &str) -> Value {
        self.check(Method::GET, path, None, want).await.body
    }

    /// Every page of a listing, following `@odata.nextLink`.
    async fn all_pages(&self, path: &str) -> (Vec<Value>, usize) {
        let (mut items, mut pages, mut next) = (Vec::new(), 0, Some(path.to_string()));
        while let Some(p) = next {
            let body = self.get(&p, "200").await;
            pages += 1;
            items.extend(body["value"].as_array().cloned().unwrap_or_default());
            next = body["@odata.nextLink"].as_str().map(str::to_string);
            assert!(pages < 100, "paging does not end");
        }
        (items, pages)
    }

    /// Check every recorded object against the CSDL; returns how many were checked, by
    /// the type each was checked as (its `@odata.type` where it has one).
    fn csdl_check(&self) -> BTreeMap<String, usize> {
        let seen = self.seen.lock().unwrap();
        let mut problems = Vec::new();
        let mut counts = BTreeMap::new();
        for (ty, path, v) in seen.iter() {
            csdl().check_object(ty, v, path, &mut problems);
            let as_type = v["@odata.type"]
                .as_str()
                .map_or(ty.as_str(), |t| t.trim_start_matches('#'));
            *counts.entry(as_type.to_string()).or_insert(0) += 1;
        }
        assert!(
            problems.is_empty(),
            "CSDL violations:\n{}",
            problems.join("\n")
        );
        counts
    }
}

fn new_user(upn: &str, employee_id: Option<&str>) -> Value {
    let nick = upn.split('@').next().unwrap_or(upn);
    let mut v = json!({"accountEnabled": true, "displayName": nick, "mailNickname": nick,
        "userPrincipalName": upn, "passwordProfile": {"forceChangePasswordNextSignIn": true,
        "password": "xWwvJ]6NMw+bWH-d"}, "givenName": "Given", "surname": "Sur",
        "department": "Engineering", "jobTitle": "Engineer", "companyName": "Example",
        "officeLocation": "London", "employeeOrgData": {"costCenter": "CC-1", "division": "R&D"}});
    if let Some(e) = employee_id {
        v["employeeId"] = json!(e);
    }
    v
}

fn reference(id: &str) -> Option<Value> {
    Some(json!({"@odata.id": format!("https://graph.microsoft.com/v1.0/directoryObjects/{id}")}))
}

// ---------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn the_token_endpoint_grants_and_refuses_as_entra_does() {
    let sim = Sim::start(EntraSimOptions::default()).await;
    let tenant = sim.h.tenant_id();
    let token = |tenant: String, change: Vec<(&'static str, &'static str)>| {
        let mut form: HashMap<&str, &str> = HashMap::from([
            ("grant_type", "client_credentials"),
            ("client_id", CLIENT),
            ("client_secret", SECRET),
            ("scope", GRAPH_SCOPE),
        ]);
        form.extend(change);
        let url = sim.url(&format!("/{tenant}/oauth2/v2.0/token"));
        let req = sim.http.post(url).form(&form);
        async move {
            let r = req.send().await.expect("answer");
            (
                r.status().as_u16(),
                r.json::<Value>().await.unwrap_or(Value::Null),
            )
        }
    };
    let (st, v) = token(tenant.clone(), vec![]).await;
    assert_eq!(
        (
            st,
            v["token_type"].as_str(),
            v["expires_in"].as_u64(),
            v["ext_expires_in"].as_u64()
        ),
        (200, Some("Bearer"), Some(3599), Some(3599)),
        "{v}"
    );
    let access = v["access_token"].as_str().expect("a token").to_string();
    let me = sim
        .send(Method::GET, "/v1.0/users", None, Some(&access))
        .await;
    assert_eq!(me.status, 200, "the token works");
    assert_eq!(
        token("example.com".into(), vec![]).await.0,
        200,
        "the tenant by domain"
    );
    for (tenant, change, status, error, code) in [
        (
            "contoso.org".to_string(),
            vec![],
            400,
            "invalid_request",
            "AADSTS90002:",
        ),
        (
            tenant.clone(),
            vec![("client_secret", "wrong")],
            401,
            "invalid_client",
            "AADSTS7000215: Invalid client secret provided.",
        ),
        (
            tenant.clone(),
            vec![("client_id", "99999999-2222-4333-8444-555555555555")],
            400,
            "unauthorized_client",
            "AADSTS700016:",
        ),
        (
            tenant.clone(),
            vec![("scope", "User.Read.All")],
            400,
            "invalid_scope",
            "AADSTS1002012:",
        ),
        (
            tenant.clone(),
            vec![("grant_type", "password")],
            400,
            "unsupported_grant_type",
            "AADSTS70003:",
        ),
    ] {
        let (st, v) = token(tenant, change.clone()).await;
        assert_eq!(
            (st, v["error"].as_str()),
            (status, Some(error)),
            "{change:?}: {v}"
        );
        let d = v["error_description"].as_str().unwrap_or("");
        assert!(d.starts_with(code) && !d.contains(SECRET), "{d}");
        assert!(
            v["trace_id"].is_string()
                && v["correlation_id"].is_string()
                && v["error_codes"].is_array()
        );
    }
    sim.h
        .set_secret_end(CLIENT, chrono::Utc::now() - chrono::Duration::minutes(1));
    let (st, v) = token(tenant, vec![]).await;
    assert_eq!(
        (st, v["error_codes"][0].as_u64()),
        (401, Some(7000222)),
        "{v}"
    );
    assert_eq!(sim.h.token_requests(), 8);
}

#[tokio::test]
async fn a_walk_of_every_route_answers_as_graph_and_matches_the_csdl() {
    let sim = Sim::start(EntraSimOptions::default()).await;
    let h = &sim.h;
    let eng = h
        .seed_group("Engineering", "eng", Some("eng@example.com"))
        .unwrap();
    let ops = h.seed_group("Ops", "ops", None).unwrap();
    let hand = h
        .create_user_by_hand("shared.mailbox@example.com", "Shared mailbox")
        .unwrap();
    // Users: create, conflicts, get by id and UPN, $select, PATCH, lists and filters.
    let a = sim
        .check(
            Method::POST,
            "/v1.0/users",
            Some(new_user("ada@example.com", Some("E1"))),
            "201",
        )
        .await;
    let ada = a.body["id"].as_str().expect("id").to_string();
    assert!(a.header("location").is_some_and(|l| l.contains(&ada)));
    assert_eq!(
        a.body["@odata.context"],
        "https://graph.microsoft.com/v1.0/$metadata#users/$entity"
    );
    assert!(
        a.body.get("employeeId").is_none() && a.body["businessPhones"] == json!([]),
        "the default set: {}",
        a.body
    );
    let dup = sim.check(Method::POST, "/v1.0/users", Some(new_user("ADA@example.com", None)), "400 Request_BadRequest: Another object with the same value for property userPrincipalName already exists.").await;
    assert_eq!(
        dup.body["error"]["details"][0]["target"],
        "userPrincipalName"
    );
    let bob = sim.create("bob@example.com", Some("E2")).await;
    let mut missing = new_user("x@example.com", None);
    missing.as_object_mut().unwrap().remove("mailNickname");
    sim.check(Method::POST, "/v1.0/users", Some(missing), "400 Request_BadRequest: A value is required for property 'mailNickname' of resource 'User'.").await;
    sim.check(
        Method::POST,
        "/v1.0/users",
        Some(new_user("x@contoso.org", None)),
        BAD,
    )
    .await;
    let mut typo = new_user("y@example.com", None);
    typo["acountEnabled"] = json!(true);
    sim.check(
        Method::POST,
        "/v1.0/users",
        Some(typo),
        "400 Request_BadRequest: Property 'acountEnabled' does not exist",
    )
    .await;
    let broken = sim
        .http
        .post(sim.url("/v1.0/users"))
        .bearer_auth(&sim.token)
        .header("content-type", "application/json")
        .body("{\"displayName\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(broken.status(), 400);
    assert_eq!(
        broken.json::<Value>().await.unwrap()["error"]["code"],
        "BadRequest"
    );
    sim.get(&format!("/v1.0/users/{ada}"), "200").await;
    let by_upn = sim.get("/v1.0/users/Ada@Example.com?$select=id,accountEnabled,employeeId,employeeOrgData,createdDateTime,department,companyName", "200").await;
    assert_eq!(
        (
            by_upn["id"].as_str(),
            by_upn["employeeId"].as_str(),
            by_upn["accountEnabled"].as_bool()
        ),
        (Some(ada.as_str()), Some("E1"), Some(true))
    );
    assert_eq!(by_upn["employeeOrgData"]["costCenter"], "CC-1");
    assert!(
        by_upn.get("displayName").is_none(),
        "only what was selected"
    );
    sim.get(
        "/v1.0/users/ada@example.com?$select=favouriteColour",
        "400 BadRequest: Could not find a property named 'favouriteColour'",
    )
    .await;
    sim.get("/v1.0/users/00000000-0000-4000-8000-000000000000", "404 Request_ResourceNotFound: Resource '00000000-0000-4000-8000-000000000000' does not exist or one of its queried reference-property objects are not present.").await;
    let ada_path = format!("/v1.0/users/{ada}");
    for (path, body, want) in [
        (
            ada_path.as_str(),
            json!({"department": "Research", "accountEnabled": false, "jobTitle": null}),
            "204",
        ),
        (
            &ada_path,
            json!({"userPrincipalName": "bob@example.com"}),
            BAD,
        ),
        (&ada_path, json!({"accountEnabled": "no"}), BAD),
        (
            "/v1.0/users/nobody@example.com",
            json!({"department": "x"}),
            NOT_FOUND,
        ),
    ] {
        sim.check(Method::PATCH, path, Some(body), want).await;
    }
    let u = h.user(&ada).unwrap();
    assert_eq!(
        (u.text("department"), u.account_enabled, u.text("jobTitle")),
        (Some("Research"), false, None)
    );
    let q = |f: &str| {
        format!(
            "/v1.0/users?$filter={}&$select=id,userPrincipalName,accountEnabled,employeeId",
            urlencoding(f)
        )
    };
    let ids = |v: &Value| {
        v["value"]
            .as_array()
            .unwrap()
            .iter()
            .map(|u| u["id"].as_str().unwrap().to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        ids(&sim
            .get(&q("userPrincipalName eq 'ADA@example.com'"), "200")
            .await),
        [ada.as_str()]
    );
    assert_eq!(
        ids(&sim.get(&q("employeeId eq 'E2'"), "200").await),
        [bob.as_str()]
    );
    assert_eq!(
        ids(&sim.get(&q("accountEnabled eq false"), "200").await),
        [ada.as_str()]
    );
    assert!(ids(&sim.get(&q("employeeId eq 'E9'"), "200").await).is_empty());
    sim.get(&q("department eq 'x'"), "400 Request_UnsupportedQuery")
        .await;
    sim.get(&q("startswith(displayName,'a')"), "400").await;
    let all = sim.get("/v1.0/users", "200").await;
    assert_eq!(all["value"].as_array().unwrap().len(), 3);
    assert_eq!(
        all["@odata.context"],
        "https://graph.microsoft.com/v1.0/$metadata#users"
    );
    sim.get("/v1.0/users?$top=0", BAD).await;
    sim.get("/v1.0/users?$top=1000", "400 Request_BadRequest: Invalid page size specified: '1000'. Must be between 1 and 999 inclusive.").await;
    sim.get("/v1.0/users?$top=1&$skiptoken=RFNwdAIAmadeup", BAD)
        .await;
    // Groups, members, memberOf.
    let groups = sim.get("/v1.0/groups", "200").await;
    assert_eq!(groups["value"].as_array().unwrap().len(), 2);
    let named = sim
        .get(
            &format!(
                "/v1.0/groups?$filter={}",
                urlencoding("displayName eq 'engineering'")
            ),
            "200",
        )
        .await;
    assert_eq!(ids(&named), [eng.as_str()]);
    sim.get(&format!("/v1.0/groups/{eng}"), "200").await;
    sim.get(
        "/v1.0/groups/00000000-0000-4000-8000-000000000000",
        NOT_FOUND,
    )
    .await;
    let members = |g: &str| format!("/v1.0/groups/{g}/members/$ref");
    sim.check(Method::POST, &members(&eng), reference(&ada), "204")
        .await;
    sim.check(Method::POST, &members(&eng), reference(&bob), "204")
        .await;
    sim.check(Method::POST, &members(&ops), reference(&ada), "204")
        .await;
    sim.check(Method::POST, &members(&eng), reference(&ada), "400 Request_BadRequest: One or more added object references already exist for the following modified properties: 'members'.").await;
    sim.check(
        Method::POST,
        &members(&eng),
        reference("00000000-0000-4000-8000-000000000000"),
        NOT_FOUND,
    )
    .await;
    sim.check(
        Method::POST,
        &members("00000000-0000-4000-8000-000000000000"),
        reference(&ada),
        NOT_FOUND,
    )
    .await;
    sim.check(
        Method::POST,
        &members(&eng),
        Some(json!({"@odata.id": "not a reference"})),
        BAD,
    )
    .await;
    sim.check(
        Method::POST,
        &members(&eng),
        Some(json!(["not an object"])),
        "400 BadRequest",
    )
    .await;
    let listed = sim.get(&format!("/v1.0/groups/{eng}/members"), "200").await;
    assert_eq!(listed["value"].as_array().unwrap().len(), 2);
    assert!(
        listed["value"]
            .as_array()
            .unwrap()
            .iter()
            .all(|m| m["@odata.type"] == "#microsoft.graph.user")
    );
    assert_eq!(
        listed["@odata.context"],
        "https://graph.microsoft.com/v1.0/$metadata#directoryObjects"
    );
    sim.get(
        &format!("/v1.0/groups/{eng}/members?$select=id,accountEnabled,employeeId"),
        "200",
    )
    .await;
    let of = sim.get(&format!("/v1.0/users/{ada}/memberOf"), "200").await;
    let mut of_ids = ids(&of);
    of_ids.sort();
    let mut want = vec![eng.clone(), ops.clone()];
    want.sort();
    assert_eq!(of_ids, want);
    assert!(
        of["value"]
            .as_array()
            .unwrap()
            .iter()
            .all(|g| g["@odata.type"] == "#microsoft.graph.group")
    );
    sim.get("/v1.0/users/nobody@example.com/memberOf", NOT_FOUND)
        .await;
    sim.check(
        Method::DELETE,
        &format!("/v1.0/groups/{eng}/members/{bob}/$ref"),
        None,
        "204",
    )
    .await;
    sim.check(
        Method::DELETE,
        &format!("/v1.0/groups/{eng}/members/{bob}/$ref"),
        None,
        NOT_FOUND,
    )
    .await;
    sim.check(
        Method::DELETE,
        &format!("/v1.0/groups/{eng}/members/{hand}/$ref"),
        None,
        NOT_FOUND,
    )
    .await;
    assert_eq!(
        (h.membership_adds(&eng, &ada), h.max_membership_adds()),
        (1, 1)
    );
    // Applications: the secret's end date, never the secret.
    let end = chrono::Utc::now() + chrono::Duration::days(12);
    h.set_secret_end(CLIENT, end);
    let apps = sim
        .get(
            &format!(
                "/v1.0/applications?$filter={}",
                urlencoding(&format!("appId eq '{CLIENT}'"))
            ),
            "200",
        )
        .await;
    let cred = &apps["value"][0]["passwordCredentials"][0];
    let got = chrono::DateTime::parse_from_rfc3339(cred["endDateTime"].as_str().unwrap()).unwrap();
    assert!((got.timestamp() - end.timestamp()).abs() <= 1, "{cred}");
    assert!(!apps.to_string().contains(SECRET) && cred["hint"] == "Sim");
    assert!(
        sim.get(
            &format!(
                "/v1.0/applications?$filter={}",
                urlencoding("appId eq 'other'")
            ),
            "200"
        )
        .await["value"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    // Delete, and the unknown.
    sim.check(Method::DELETE, &format!("/v1.0/users/{bob}"), None, "204")
        .await;
    sim.check(
        Method::DELETE,
        &format!("/v1.0/users/{bob}"),
        None,
        NOT_FOUND,
    )
    .await;
    sim.get(&format!("/v1.0/users/{bob}"), NOT_FOUND).await;
    sim.get(
        "/v1.0/devices",
        "400 BadRequest: Resource not found for the segment 'devices'.",
    )
    .await;
    // The client's request id comes back.
    let r = sim
        .http
        .get(sim.url("/v1.0/users/nobody@example.com"))
        .bearer_auth(&sim.token)
        .header("client-request-id", "my-id-1")
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["client-request-id"], "my-id-1");
    assert_eq!(
        r.json::<Value>().await.unwrap()["error"]["innerError"]["client-request-id"],
        "my-id-1"
    );
    assert_eq!((h.creates_for("ada@example.com"), h.max_creates()), (1, 1));
    let checked = sim.csdl_check();
    eprintln!("CSDL-checked objects: {checked:?}");
    let types: Vec<&str> = checked.keys().map(String::as_str).collect();
    assert_eq!(
        types,
        [
            "microsoft.graph.application",
            "microsoft.graph.group",
            "microsoft.graph.user"
        ]
    );
    assert!(checked.values().sum::<usize>() >= 20, "{checked:?}");
}

/// Percent-encode a query value.
fn urlencoding(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

#[tokio::test]
async fn paging_follows_next_links_without_repeats_when_users_arrive_between_pages() {
    let sim = Sim::start(EntraSimOptions::default()).await;
    let mut upns: Vec<String> = (0..7).map(|i| format!("p{i}@example.com")).collect();
    for u in &upns {
        sim.h.seed_user(u, json!({"employeeId": "E"})).unwrap();
    }
    let first = sim
        .get("/v1.0/users?$top=3&$select=id,userPrincipalName", "200")
        .await;
    let next = first["@odata.nextLink"]
        .as_str()
        .expect("a next link")
        .to_string();
    assert!(
        next.starts_with(&sim.server.base_url())
            && next.contains("skiptoken")
            && next.contains("select"),
        "{next}"
    );
    // Two arrive while the listing pages: one is ordered before the cursor, one after
    // (ids are random; whichever side each falls on, nothing already there is repeated or
    // skipped, and what lands after the cursor is seen).
    let cursor = first["value"][2]["id"].as_str().unwrap().to_string();
    let mut late = Vec::new();
    for i in 0..2 {
        let upn = format!("late{i}@example.com");
        late.push((sim.h.seed_user(&upn, json!({})).unwrap(), upn));
    }
    let (rest, pages) = sim.all_pages(&next).await;
    assert!(pages >= 2, "{pages}");
    let mut seen: Vec<String> = first["value"]
        .as_array()
        .unwrap()
        .iter()
        .chain(&rest)
        .map(|u| u["userPrincipalName"].as_str().unwrap().to_string())
        .collect();
    let unique: BTreeSet<&String> = seen.iter().collect();
    assert_eq!(unique.len(), seen.len(), "nothing repeated: {seen:?}");
    for (id, upn) in &late {
        if *id > cursor {
            upns.push(upn.clone());
        } else {
            seen.push(upn.clone()); // before the cursor: not seen this time, and fine
        }
    }
    for u in &upns {
        assert!(seen.contains(u), "{u} skipped: {seen:?}");
    }
    // A group's members page too; a token from one listing is refused by another.
    let g = sim.h.seed_group("All", "all", None).unwrap();
    let names: Vec<&str> = upns.iter().map(String::as_str).collect();
    sim.h.seed_members("All", &names).unwrap();
    let (members, pages) = sim
        .all_pages(&format!("/v1.0/groups/{g}/members?$top=2"))
        .await;
    assert_eq!((members.len(), pages), (upns.len(), upns.len().div_ceil(2)));
    let token = url::Url::parse(&next)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "$skiptoken")
        .unwrap()
        .1
        .to_string();
    sim.get(&format!("/v1.0/groups/{g}/members?$skiptoken={token}"), BAD)
        .await;
    sim.csdl_check();
}

#[tokio::test]
async fn throttling_answers_429_with_retry_after_per_app() {
    let sim = Sim::start(opts(|o| {
        o.requests_per_window = 5;
        o.rate_window = Duration::from_secs(3600);
    }))
    .await;
    let mut pct = Vec::new();
    for _ in 0..5 {
        let a = sim.check(Method::GET, "/v1.0/users", None, "200").await;
        pct.push(
            a.header("x-ms-throttle-limit-percentage")
                .map(str::to_string),
        );
    }
    assert_eq!(
        pct,
        [None, None, None, None, Some("1.00".to_string())],
        "above 80% only"
    );
    let a = sim
        .check(Method::GET, "/v1.0/users", None, "429 TooManyRequests")
        .await;
    let retry: u64 = a
        .header("retry-after")
        .and_then(|r| r.parse().ok())
        .expect("Retry-After seconds");
    assert!((1..=3600).contains(&retry), "{retry}");
    assert!(
        a.header("x-ms-throttle-scope")
            .is_some_and(|s| s.contains(CLIENT))
    );
    sim.h
        .register_app("other-app", "other-secret", &["User.Read.All"]);
    let other = sim.h.issue_token("other-app").unwrap();
    assert_eq!(
        sim.send(Method::GET, "/v1.0/users", None, Some(&other))
            .await
            .status,
        200,
        "per app"
    );
    assert_eq!(sim.h.limits().refused(), 1);
    sim.h.limits().set_limit(None, 100);
    sim.check(Method::GET, "/v1.0/users", None, "200").await;
    // Injected faults in Graph's shapes.
    sim.h.faults().throttle_next(1);
    let a = sim
        .check(Method::GET, "/v1.0/users", None, "429 TooManyRequests")
        .await;
    assert!(a.header("retry-after").is_some());
    sim.h.faults().set_down(true);
    let a = sim
        .check(Method::GET, "/v1.0/groups", None, "503 serviceNotAvailable")
        .await;
    assert!(a.header("retry-after").is_some());
    sim.h.faults().set_down(false);
    sim.h.fail(FailRule::new(
        Some(Method::GET),
        "/v1.0/groups",
        BodyFault::reject(504, "UnknownError", "Gateway timeout."),
        1,
    ));
    sim.check(Method::GET, "/v1.0/groups", None, "504 UnknownError")
        .await;
    sim.check(Method::GET, "/v1.0/groups", None, "200").await;
}

#[tokio::test]
async fn new_users_and_memberships_become_visible_after_the_delay() {
    let delay = Duration::from_millis(600);
    let sim = Sim::start(opts(|o| {
        o.faults = FaultProfile {
            visibility_delay: delay,
            ..FaultProfile::none()
        }
    }))
    .await;
    let g = sim.h.seed_group("Engineering", "eng", None).unwrap();
    let created = SystemTime::now();
    let id = sim.create("new@example.com", Some("E7")).await;
    sim.get(&format!("/v1.0/users/{id}"), NOT_FOUND).await;
    let filter = format!("/v1.0/users?$filter={}", urlencoding("employeeId eq 'E7'"));
    assert!(
        sim.get(&filter, "200").await["value"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    sim.check(
        Method::POST,
        &format!("/v1.0/groups/{g}/members/$ref"),
        reference(&id),
        NOT_FOUND,
    )
    .await;
    sim.check(
        Method::PATCH,
        &format!("/v1.0/users/{id}"),
        Some(json!({"jobTitle": "x"})),
        "204",
    )
    .await;
    sim.check(
        Method::POST,
        "/v1.0/users",
        Some(new_user("new@example.com", None)),
        BAD,
    )
    .await;
    tokio::time::sleep(
        delay.saturating_sub(created.elapsed().unwrap_or_default()) + Duration::from_millis(50),
    )
    .await;
    sim.get(&format!("/v1.0/users/{id}"), "200").await;
    assert_eq!(
        sim.get(&filter, "200").await["value"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    sim.check(
        Method::POST,
        &format!("/v1.0/groups/{g}/members/$ref"),
        reference(&id),
        "204",
    )
    .await;
    assert!(
        sim.get(&format!("/v1.0/groups/{g}/members"), "200").await["value"]
            .as_array()
            .unwrap()
            .is_empty(),
        "the membership lags"
    );
    assert!(
        sim.get(&format!("/v1.0/users/{id}/memberOf"), "200").await["value"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        sim.h.members("Engineering"),
        ["new@example.com"],
        "the truth"
    );
    tokio::time::sleep(delay + Duration::from_millis(50)).await;
    assert_eq!(
        sim.get(&format!("/v1.0/groups/{g}/members"), "200").await["value"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        sim.get(&format!("/v1.0/users/{id}/memberOf"), "200").await["value"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    sim.csdl_check();
}

#[tokio::test]
async fn tokens_are_refused_when_missing_revoked_or_expired_and_permissions_are_checked() {
    let sim = Sim::start(EntraSimOptions::default()).await;
    let none = sim.send(Method::GET, "/v1.0/users", None, None).await;
    assert_eq!(
        none.summary(),
        "401 InvalidAuthenticationToken: Access token is empty."
    );
    assert!(
        none.header("www-authenticate")
            .is_some_and(|w| w.starts_with("Bearer"))
    );
    assert!(
        sim.send(Method::GET, "/v1.0/users", None, Some("eyJ.garbage"))
            .await
            .summary()
            .starts_with(BAD_TOKEN)
    );
    // Read-only permissions: reads pass, writes and other areas are refused.
    sim.h
        .register_app("reader", "reader-secret", &["User.Read.All"]);
    let reader = sim.h.issue_token("reader").unwrap();
    let call = |m: Method, p: &'static str, b: Option<Value>| sim.send(m, p, b, Some(&reader));
    assert_eq!(call(Method::GET, "/v1.0/users", None).await.status, 200);
    assert_eq!(
        call(
            Method::POST,
            "/v1.0/users",
            Some(new_user("z@example.com", None))
        )
        .await
        .summary(),
        DENIED
    );
    assert_eq!(
        call(Method::GET, "/v1.0/groups", None).await.summary(),
        DENIED
    );
    assert_eq!(
        call(Method::GET, "/v1.0/applications", None)
            .await
            .summary(),
        DENIED
    );
    assert_eq!(sim.h.max_creates(), 0, "a refused create creates nothing");
    // Revoked.
    sim.h.revoke_tokens();
    let a = sim.check(Method::GET, "/v1.0/users", None, BAD_TOKEN).await;
    assert!(a.header("www-authenticate").is_some());
    // Expired.
    sim.h.set_token_ttl(Duration::from_millis(300));
    let short = sim.h.issue_token(CLIENT).unwrap();
    assert_eq!(
        sim.send(Method::GET, "/v1.0/users", None, Some(&short))
            .await
            .status,
        200
    );
    tokio::time::sleep(Duration::from_millis(400)).await;
    let a = sim
        .send(Method::GET, "/v1.0/users", None, Some(&short))
        .await;
    assert_eq!(
        a.summary(),
        "401 InvalidAuthenticationToken: Lifetime validation failed, the token is expired."
    );
    // No token value in the request log.
    let log: String = sim.h.log().iter().map(|r| r.access_line()).collect();
    assert!(
        sim.h
            .issued_access_tokens()
            .iter()
            .all(|t| !log.contains(t.as_str()))
            && !log.contains(SECRET)
    );
}

#[tokio::test]
async fn deprecation_headers_are_off_by_default_and_sent_when_set() {
    let sim = Sim::start(EntraSimOptions::default()).await;
    let a = sim.check(Method::GET, "/v1.0/users", None, "200").await;
    assert!(a.header("deprecation").is_none() && a.header("sunset").is_none());
    let since = SystemTime::UNIX_EPOCH + Duration::from_secs(1_767_225_600);
    let sunset = since + Duration::from_secs(365 * 86_400);
    sim.h.set_deprecation(Some(Deprecation {
        since,
        sunset,
        link: Some("https://aka.ms/graph-changes".into()),
    }));
    let a = sim.check(Method::GET, "/v1.0/users", None, "200").await;
    assert_eq!(
        a.header("deprecation"),
        Some("Thu, 01 Jan 2026 00:00:00 GMT")
    );
    assert_eq!(a.header("sunset"), Some("Fri, 01 Jan 2027 00:00:00 GMT"));
    assert!(
        a.header("link")
            .is_some_and(|l| l.contains("rel=\"deprecation\""))
    );
    sim.h.set_deprecation(None);
    assert!(
        sim.check(Method::GET, "/v1.0/users", None, "200")
            .await
            .header("sunset")
            .is_none()
    );
}
