//! Unit tests of `okta`.

use super::*;

#[test]
fn buckets_follow_okta_documentation() {
    assert_eq!(bucket_for(&Method::GET, "/api/v1/users"), buckets::USERS);
    assert_eq!(bucket_for(&Method::POST, "/api/v1/users"), buckets::USERS);
    assert_eq!(
        bucket_for(&Method::GET, "/api/v1/users/00u1"),
        buckets::USER_GET
    );
    assert_eq!(
        bucket_for(&Method::POST, "/api/v1/users/00u1"),
        buckets::USER_WRITE
    );
    assert_eq!(
        bucket_for(&Method::POST, "/api/v1/users/00u1/lifecycle/suspend"),
        buckets::OTHER
    );
    assert_eq!(bucket_for(&Method::POST, "/api/v1/groups"), buckets::GROUPS);
    assert_eq!(
        bucket_for(&Method::PUT, "/api/v1/groups/00g1/users/00u1"),
        buckets::GROUP
    );
    assert_eq!(
        bucket_for(&Method::POST, "/oauth2/v1/token"),
        buckets::TOKEN
    );
}

#[test]
fn paging_by_id_cursor() {
    let items: Vec<(String, u32)> = (1..=5).map(|i| (format!("id{i}"), i)).collect();
    let (p, n) = page(&items, None, 2);
    assert_eq!((p, n.as_deref()), (vec![1, 2], Some("id2")));
    let (p, n) = page(&items, Some("id4"), 2);
    assert_eq!((p, n), (vec![5], None));
    let (p, n) = page(&items, Some("id2"), 3);
    assert_eq!((p, n), (vec![3, 4, 5], None));
}

#[test]
fn manage_scopes_include_read() {
    let g = vec!["okta.users.manage".to_string()];
    assert!(scope_granted(&g, "okta.users.read"));
    assert!(scope_granted(&g, "okta.users.manage"));
    assert!(!scope_granted(&g, "okta.groups.read"));
}

/// A client for the running simulator, as the admin (SSWS).
struct Client {
    http: reqwest::Client,
    base: String,
}

impl Client {
    async fn start(opts: OktaSimOptions) -> (SimServer, OktaHandle, Client) {
        crate::adapters::http::install_crypto_provider();
        let (server, handle) = spawn(opts).await.expect("sim");
        handle.add_api_token("t0ken-for-tests");
        let client = Client {
            http: reqwest::Client::new(),
            base: server.base_url(),
        };
        (server, handle, client)
    }

    /// POST `path` with `body`: the status and the JSON answer (Null when empty).
    async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        let r = self
            .http
            .post(format!("{}{path}", self.base))
            .header("authorization", "SSWS t0ken-for-tests")
            .json(&body)
            .send()
            .await
            .expect("request");
        let status = r.status().as_u16();
        let bytes = r.bytes().await.expect("body");
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    async fn create(&self, query: &str, login: &str, password: Option<&str>) -> (u16, Value) {
        let mut body = json!({ "profile": {
            "login": login, "email": login, "firstName": "Ada", "lastName": "Lovelace"
        }});
        if let Some(p) = password {
            body["credentials"] = json!({ "password": { "value": p } });
        }
        self.post(&format!("/api/v1/users{query}"), body).await
    }

    async fn lifecycle(&self, id: &str, op: &str) -> (u16, Value) {
        self.post(&format!("/api/v1/users/{id}/lifecycle/{op}"), json!({}))
            .await
    }
}

fn status_of(h: &OktaHandle, id: &str) -> String {
    h.users()
        .into_iter()
        .find(|u| u.id == id)
        .map(|u| u.status)
        .unwrap_or_default()
}

#[tokio::test]
async fn users_are_created_staged_provisioned_or_active_as_okta_says() {
    let (server, h, c) = Client::start(OktaSimOptions::default()).await;
    let (st, u) = c
        .create("?activate=false", "staged@example.com", None)
        .await;
    assert_eq!((st, u["status"].as_str()), (200, Some("STAGED")), "{u}");
    let (_, u) = c.create("", "pending@example.com", None).await;
    assert_eq!(
        u["status"], "PROVISIONED",
        "activated without a password: {u}"
    );
    let (_, u) = c
        .create("?activate=true", "active@example.com", Some("Tr0ub4dor&3x"))
        .await;
    assert_eq!(u["status"], "ACTIVE", "{u}");
    assert_eq!(u["credentials"]["password"], json!({}), "never echoed: {u}");
    assert!(!u.to_string().contains("Tr0ub4dor"), "{u}");
    let (st, e) = c.create("", "weak@example.com", Some("short")).await;
    assert_eq!(
        (st, e["errorCode"].as_str()),
        (400, Some("E0000001")),
        "{e}"
    );
    assert!(h.user_by_login("weak@example.com").is_none());
    server.stop().await;
}

#[tokio::test]
async fn lifecycle_moves_follow_okta_and_refusals_carry_its_errors() {
    let (server, h, c) = Client::start(OktaSimOptions::default()).await;
    let id = |u: &Value| u["id"].as_str().unwrap_or_default().to_string();
    // STAGED without a password: activation leaves them to the welcome flow.
    let staged = id(&c.create("?activate=false", "a@example.com", None).await.1);
    let (st, body) = c.lifecycle(&staged, "activate?sendEmail=false").await;
    assert_eq!(st, 200);
    assert!(body["activationToken"].is_string(), "{body}");
    assert_eq!(status_of(&h, &staged), "PROVISIONED");
    let (st, e) = c.lifecycle(&staged, "activate").await;
    assert_eq!(
        (st, e["errorCode"].as_str()),
        (403, Some("E0000016")),
        "{e}"
    );
    // PROVISIONED cannot be suspended; reactivate restarts the flow.
    let (st, e) = c.lifecycle(&staged, "suspend").await;
    assert_eq!(
        (st, e["errorCode"].as_str()),
        (400, Some("E0000001")),
        "{e}"
    );
    assert_eq!(
        c.lifecycle(&staged, "reactivate?sendEmail=false").await.0,
        200
    );
    assert_eq!(status_of(&h, &staged), "PROVISIONED");

    // STAGED with a password: active at once.
    let with_pw = id(&c
        .create("?activate=false", "b@example.com", Some("C0rrectHorse"))
        .await
        .1);
    assert_eq!(c.lifecycle(&with_pw, "activate").await.0, 200);
    assert_eq!(status_of(&h, &with_pw), "ACTIVE");
    let (st, e) = c.lifecycle(&with_pw, "reactivate").await;
    assert_eq!(
        (st, e["errorCode"].as_str()),
        (403, Some("E0000038")),
        "{e}"
    );

    // ACTIVE -> DEPROVISIONED; again is refused; activation brings them back to set up.
    assert_eq!(c.lifecycle(&with_pw, "deactivate").await.0, 200);
    assert_eq!(status_of(&h, &with_pw), "DEPROVISIONED");
    let (st, e) = c.lifecycle(&with_pw, "deactivate").await;
    assert_eq!(
        (st, e["errorCode"].as_str()),
        (403, Some("E0000038")),
        "{e}"
    );
    assert_eq!(c.lifecycle(&with_pw, "activate").await.0, 200);
    assert_eq!(status_of(&h, &with_pw), "PROVISIONED");

    // A STAGED user can be deactivated too.
    let other = id(&c.create("?activate=false", "c@example.com", None).await.1);
    assert_eq!(c.lifecycle(&other, "deactivate").await.0, 200);
    assert_eq!(status_of(&h, &other), "DEPROVISIONED");
    server.stop().await;
}

#[tokio::test]
async fn too_many_requests_in_flight_get_okta_s_concurrency_429() {
    let (server, h, c) = Client::start(OktaSimOptions {
        concurrency_limit: Some(1),
        faults: FaultProfile {
            latency: Some((Duration::from_millis(300), Duration::from_millis(300))),
            ..FaultProfile::none()
        },
        ..Default::default()
    })
    .await;
    let get = || {
        c.http
            .get(format!("{}/api/v1/users/me", c.base))
            .header("authorization", "SSWS t0ken-for-tests")
            .send()
    };
    let (a, b, d) = tokio::join!(get(), get(), get());
    let answers = [a.unwrap(), b.unwrap(), d.unwrap()];
    let refused: Vec<&reqwest::Response> = answers.iter().filter(|r| r.status() == 429).collect();
    assert_eq!(refused.len(), 2, "one in flight at a time");
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    for r in &refused {
        let header = |n: &str| {
            r.headers()
                .get(n)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<u64>().ok())
        };
        assert_eq!(
            header("x-rate-limit-limit"),
            Some(1),
            "the concurrent limit"
        );
        assert_eq!(header("x-rate-limit-remaining"), Some(0));
        let reset = header("x-rate-limit-reset").unwrap_or(0);
        assert!(
            reset >= now && reset <= now + 2,
            "an estimate: {reset} vs {now}"
        );
    }
    let body: Value = answers
        .into_iter()
        .find(|r| r.status() == 429)
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(body["errorCode"], "E0000047");
    assert_eq!(h.concurrency().refused(), 2);
    assert_eq!(h.concurrency().peak(), 1);
    // Lifted at run time.
    h.concurrency().set_limit(0);
    let (a, b) = tokio::join!(get(), get());
    assert!(a.unwrap().status().is_success() && b.unwrap().status().is_success());
    server.stop().await;
}
