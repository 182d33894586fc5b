//! Behaviour of the Okta adapter against the Okta simulator: broken bodies, failing pages,
//! random faults, revoked credentials, OAuth tokens, rate limits and eventual consistency.
//! Windows, timeouts and retries are short so that every test runs in seconds.

mod okta_support;

use accessdesk::adapters::http::{RateLimiter, install_crypto_provider};
use accessdesk::adapters::prelude::*;
use accessdesk::adapters::registry::{AdapterContext, build_with};
use accessdesk::adapters::{AdapterError, ErrorClass, collect_all};
use accessdesk::secrets::Secret;
use accessdesk::sim::SimServer;
use accessdesk::sim::fault::FaultProfile;
use accessdesk::sim::okta::{
    self, BodyFault, FailRule, LoggedRequest, OktaHandle, OktaSimOptions, buckets,
};
use axum::http::Method;
use futures::StreamExt;
use okta_support::*;
use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

async fn sim(opts: OktaSimOptions) -> (SimServer, OktaHandle) {
    install_crypto_provider();
    let (server, handle) = okta::spawn(opts).await.expect("sim");
    handle.add_api_token(SSWS_TOKEN);
    (server, handle)
}

fn is_get(r: &LoggedRequest, path: &str) -> bool {
    r.method == Method::GET && r.path == path
}

/// An error must carry its class, the vendor status and a body excerpt.
fn assert_classified(e: &AdapterError, class: ErrorClass, status: u16, excerpt_has: &str) {
    assert_eq!(e.class, class, "{e}");
    assert_eq!(e.status, Some(status), "{e}");
    assert!(
        e.excerpt.contains(excerpt_has),
        "excerpt {:?} should contain {excerpt_has:?} ({e})",
        e.excerpt
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broken_bodies_are_classified_errors_with_status_and_excerpt() {
    let (server, sim) = sim(OktaSimOptions::default()).await;
    let a = ssws_adapter(&server.base_url(), 200);
    let uid = sim.seed_user("kim@example.com", "Kim", "Lee");
    let user_path = format!("/api/v1/users/{uid}");

    // Malformed JSON in a 200.
    sim.fail(FailRule::new(
        Some(Method::GET),
        &user_path,
        BodyFault::MalformedJson,
        100,
    ));
    let e = a.get_account(&uid).await.expect_err("malformed JSON");
    assert_classified(&e, ErrorClass::Transient, 200, "\"profile\":{\"login\":");
    assert!(e.message.contains("Okta user"), "{e}");
    // The request went through; its answer is unreadable. The adapter does not send it
    // again by itself; the class tells the engine that trying again may help.
    assert_eq!(sim.count(|r| is_get(r, &user_path)), 1);
    sim.clear_rules();

    // A 200 with JSON of the wrong shape: for one user, and for a list.
    sim.fail(FailRule::new(
        Some(Method::GET),
        &user_path,
        BodyFault::UnexpectedShape,
        100,
    ));
    let e = a.get_account(&uid).await.expect_err("unexpected shape");
    assert_classified(&e, ErrorClass::Transient, 200, "unexpected");
    sim.fail(FailRule::new(
        Some(Method::GET),
        "/api/v1/users",
        BodyFault::UnexpectedShape,
        100,
    ));
    let e = a.list_accounts(None).await.expect_err("object for a list");
    assert_classified(&e, ErrorClass::Transient, 200, "unexpected");
    assert!(e.message.contains("JSON array"), "{e}");
    sim.clear_rules();

    // An HTML page from a proxy: 502 is transient (retried, then given up), 403 from a WAF
    // is permanent (sent once), a 200 HTML page (captive portal) is not a user.
    sim.fail(FailRule::new(
        Some(Method::POST),
        "/api/v1/users",
        BodyFault::Html(502),
        100,
    ));
    let e = a.create_account(&spec(1)).await.expect_err("HTML 502");
    assert_classified(&e, ErrorClass::Transient, 502, "502 Bad Gateway");
    assert!(e.message.contains("HTML page"), "{e}");
    assert!(e.message.contains("gave up after 4 attempts"), "{e}");
    assert_eq!(sim.creates_for(&spec(1).login), 0);
    sim.clear_rules();
    sim.clear_log();
    sim.fail(FailRule::new(
        Some(Method::GET),
        &user_path,
        BodyFault::Html(403),
        100,
    ));
    let e = a.get_account(&uid).await.expect_err("HTML 403");
    assert_classified(&e, ErrorClass::Permanent, 403, "403 Forbidden");
    assert_eq!(
        sim.count(|r| is_get(r, &user_path)),
        1,
        "permanent: not retried"
    );
    sim.clear_rules();
    sim.fail(FailRule::new(
        Some(Method::GET),
        &user_path,
        BodyFault::Html(200),
        100,
    ));
    let e = a.get_account(&uid).await.expect_err("HTML 200");
    assert_classified(&e, ErrorClass::Transient, 200, "<!DOCTYPE html>");
    assert!(e.message.contains("HTML page"), "{e}");
    sim.clear_rules();

    // A body cut off mid-transfer: what arrived is in the excerpt.
    sim.fail(FailRule::new(
        Some(Method::GET),
        &user_path,
        BodyFault::Truncated,
        100,
    ));
    let e = a.get_account(&uid).await.expect_err("truncated");
    assert_classified(&e, ErrorClass::Transient, 200, "{\"_links\":");
    assert!(e.message.contains("cut off"), "{e}");
    sim.clear_rules();

    // Once, a transfer failure or a gateway error is absorbed by the HTTP retry; an
    // unreadable 200 by the caller trying again.
    for f in [
        BodyFault::Html(502),
        BodyFault::Truncated,
        BodyFault::ServerError,
    ] {
        sim.fail(FailRule::new(Some(Method::GET), &user_path, f, 1));
        let acc = a.get_account(&uid).await.expect("retried").expect("found");
        assert_eq!(acc.login, "kim@example.com");
    }
    for f in [BodyFault::MalformedJson, BodyFault::UnexpectedShape] {
        sim.fail(FailRule::new(Some(Method::GET), &user_path, f, 1));
        assert!(a.get_account(&uid).await.unwrap_err().class.is_retryable());
        assert!(a.get_account(&uid).await.unwrap().is_some());
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listing_failing_on_page_7_of_10_resumes_or_fails_whole() {
    let (server, sim) = sim(OktaSimOptions::default()).await;
    for i in 0..29 {
        sim.seed_user(&format!("p{i:02}@example.com"), "P", &format!("N{i}"));
    }
    let mut ids: Vec<String> = sim.users().into_iter().map(|u| u.id).collect();
    ids.sort();
    assert_eq!(ids.len(), 30, "29 and the admin: 10 pages of 3");
    let a = adapter_with(
        &server.base_url(),
        SSWS_TOKEN,
        &[("page_size", toml::Value::Integer(3))],
        |o| o.retry.max_attempts = 2,
    );
    let page7 = format!("after={}", ids[17]);
    let page2 = format!("after={}", ids[2]);

    // Page 7 fails three times: twice inside one fetch (HTTP retries), once more on the
    // collector's retry of that page; the pages before it are kept, not fetched again.
    sim.fail(
        FailRule::new(
            Some(Method::GET),
            "/api/v1/users",
            BodyFault::ServerError,
            3,
        )
        .with_query(&page7),
    );
    let all = collect_all(|c| a.list_accounts(c), 3)
        .await
        .expect("resumed");
    let got: Vec<&str> = all.iter().map(|u| u.external_id.as_str()).collect();
    assert_eq!(got, ids.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(
        sim.count(|r| r.query.contains(&page2)),
        1,
        "page 2 fetched once"
    );
    assert_eq!(
        sim.count(|r| r.query.contains(&page7)),
        4,
        "page 7: 3 failures + 1"
    );

    // Page 7 keeps failing: the whole listing fails, with the page, status and excerpt.
    sim.fail(
        FailRule::new(
            Some(Method::GET),
            "/api/v1/users",
            BodyFault::Html(502),
            100,
        )
        .with_query(&page7),
    );
    let e = collect_all(|c| a.list_accounts(c), 2)
        .await
        .expect_err("no silent partial result");
    assert_classified(&e, ErrorClass::Transient, 502, "Bad Gateway");
    assert!(
        e.message.contains("listing failed on page 7 after 6 pages"),
        "{e}"
    );

    // The cursor a failed page was fetched with resumes the listing on its own.
    sim.clear_rules();
    let mut cursor = None;
    for _ in 0..6 {
        cursor = a.list_accounts(cursor).await.unwrap().next;
    }
    let cursor = cursor.expect("cursor of page 7");
    assert!(
        cursor.contains(&page7) && cursor.starts_with("/api/v1/users?"),
        "{cursor}"
    );
    let p7 = a.list_accounts(Some(cursor)).await.expect("page 7 alone");
    assert_eq!(p7.items[0].external_id, ids[18]);
    let e = a
        .list_accounts(Some("/api/v1/groups".into()))
        .await
        .expect_err("foreign cursor");
    assert_eq!(e.class, ErrorClass::Permanent);
    server.stop().await;
}

/// Run one operation until it succeeds (the engine's job, reduced to its core): retryable
/// errors are tried again; anything else fails the test.
async fn until_done<T, F, Fut>(what: &str, mut op: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, AdapterError>>,
{
    for _ in 0..8 {
        match op().await {
            Ok(v) => return v,
            Err(e) if e.class.is_retryable() => continue,
            Err(e) => panic!("{what}: {e}"),
        }
    }
    panic!("{what}: still failing after 8 rounds");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_percent_faults_converge_without_duplicates() {
    // OKTA_FAULT_SEED picks another fault sequence (the default is fixed for reproducibility).
    let seed = std::env::var("OKTA_FAULT_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(42);
    let faults = FaultProfile {
        timeout_delay: Duration::from_millis(1500),
        ..FaultProfile::mixed(0.10, seed)
    };
    let (server, sim) = sim(OktaSimOptions {
        faults,
        lost_response_rate: 0.03,
        seed,
        ..Default::default()
    })
    .await;
    let eng = sim.seed_group("eng");
    let ops = sim.seed_group("ops");
    let a = adapter_with(
        &server.base_url(),
        SSWS_TOKEN,
        &[("page_size", toml::Value::Integer(5))],
        |o| {
            o.timeouts.request = Duration::from_secs(1);
            o.retry.max_attempts = 6;
        },
    );
    let people: Vec<usize> = (0..20).collect();
    let results: Vec<(usize, String)> = futures::stream::iter(people)
        .map(|i| {
            let a = &a;
            async move {
                let s = spec(i);
                let acc = until_done("create", || async {
                    match a.create_account(&s).await {
                        Err(e) if e.class == ErrorClass::Conflict => {
                            // Created, but the answer was lost and the lookup failed: look again.
                            match a.get_account_by_login(&s.login).await? {
                                Some(acc) => Ok(acc),
                                None => Err(e),
                            }
                        }
                        other => other,
                    }
                })
                .await;
                let id = acc.external_id;
                let (eng, ops) = (group("eng"), group("ops"));
                until_done("add eng", || a.add_membership(&id, &eng)).await;
                until_done("add ops", || a.add_membership(&id, &ops)).await;
                let change = accessdesk::adapters::AccountSpec {
                    display_name: format!("Person {i}"),
                    ..Default::default()
                };
                until_done("update", || a.update_account(&id, &change)).await;
                if i % 5 == 0 {
                    until_done("remove ops", || a.remove_membership(&id, &ops)).await;
                }
                if i % 4 == 0 {
                    until_done("deactivate", || a.deactivate_account(&id)).await;
                }
                (i, id)
            }
        })
        .buffer_unordered(4)
        .collect()
        .await;
    let listed = until_done("list", || collect_all(|c| a.list_accounts(c), 3)).await;

    let (requests, injected) = sim.faults().counts();
    eprintln!("faults: {injected} injected in {requests} requests");
    sim.faults().set_profile(FaultProfile::none());
    sim.set_lost_response_rate(0.0);

    assert!(injected > 0, "faults were injected");
    assert_eq!(sim.max_creates_per_login(), 1, "no user created twice");
    assert_eq!(sim.users().len(), 21);
    assert_eq!(listed.len(), 21);
    assert_eq!(
        listed
            .iter()
            .map(|u| &u.external_id)
            .collect::<BTreeSet<_>>()
            .len(),
        21,
        "no account listed twice"
    );
    assert_eq!(sim.max_membership_adds(), 1, "no membership added twice");
    let mut eng_members = sim.members(&eng);
    let mut ops_members = sim.members(&ops);
    eng_members.sort();
    ops_members.sort();
    let mut want_eng: Vec<String> = results.iter().map(|(_, id)| id.clone()).collect();
    let mut want_ops: Vec<String> = results
        .iter()
        .filter(|(i, _)| i % 5 != 0)
        .map(|(_, id)| id.clone())
        .collect();
    want_eng.sort();
    want_ops.sort();
    assert_eq!(eng_members, want_eng);
    assert_eq!(ops_members, want_ops);
    for (i, id) in &results {
        let u = sim.users().into_iter().find(|u| &u.id == id).unwrap();
        // Created without a password: PROVISIONED (the welcome flow is the user's).
        let want = if i % 4 == 0 {
            "DEPROVISIONED"
        } else {
            "PROVISIONED"
        };
        assert_eq!(u.status, want, "person {i}");
        assert_eq!(u.profile["displayName"], format!("Person {i}"));
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_api_token_is_unauthorized_names_the_keychain_entry_and_is_sent_once() {
    let (server, sim) = sim(OktaSimOptions::default()).await;
    let uid = sim.seed_user("kim@example.com", "Kim", "Lee");
    let a = ssws_adapter(&server.base_url(), 200);
    assert!(a.get_account(&uid).await.unwrap().is_some());
    sim.revoke_token(SSWS_TOKEN);
    sim.clear_log();
    let e = a.get_account(&uid).await.expect_err("revoked");
    assert_eq!(e.class, ErrorClass::Unauthorized);
    assert_eq!(e.status, Some(401));
    assert_eq!(e.vendor_code.as_deref(), Some("E0000011"));
    let shown = e.to_string();
    assert!(shown.starts_with("okta: unauthorized"), "{shown}");
    assert!(shown.contains("keyring:okta-token"), "{shown}");
    assert_eq!(sim.log().len(), 1, "an Unauthorized is not retried");
    for text in [shown, format!("{e:?}"), format!("{a:?}"), e.excerpt.clone()] {
        assert!(!text.contains(SSWS_TOKEN), "the token leaked: {text}");
    }
    let e = a.authenticate().await.expect_err("authenticate");
    assert_eq!(e.class, ErrorClass::Unauthorized);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oauth_tokens_are_cached_refetched_once_after_a_401_and_bad_keys_fail_once() {
    let (server, sim) = sim(OktaSimOptions::default()).await;
    let base = server.base_url();
    let uid = sim.seed_user("kim@example.com", "Kim", "Lee");
    sim.seed_group("eng");
    let client = "0oa1testclient000001";
    sim.register_client(
        client,
        &fixture("test-rsa-public.pem"),
        &["okta.users.manage", "okta.groups.manage"],
    );
    let pem = fixture("test-rsa-private.pem");
    let settings = jwt_settings(client, "okta.users.manage okta.groups.manage", None);
    let a = adapter_with(&base, &pem, &settings, |_| {});
    let who = a.authenticate().await.expect("authenticate");
    assert_eq!(who.principal, client);
    assert_eq!(who.scopes, ["okta.users.manage", "okta.groups.manage"]);
    assert_eq!(who.details["auth"], "private_key_jwt (OAuth service app)");
    for _ in 0..3 {
        assert!(a.get_account(&uid).await.unwrap().is_some());
    }
    a.add_membership(&uid, &group("eng")).await.unwrap();
    assert_eq!(sim.token_requests(), 1, "the access token is cached");

    // Revoked access token: one 401, one new token, the call succeeds.
    sim.revoke_access_tokens();
    sim.clear_log();
    assert!(a.get_account(&uid).await.unwrap().is_some());
    assert_eq!(sim.token_requests(), 2);
    assert_eq!(sim.count(|r| r.status == 401), 1);

    // Client removed (key revoked at Okta): one 401 from the API, one refused token
    // request, then Unauthorized naming the system and the keychain entry.
    sim.revoke_access_tokens();
    sim.remove_client(client);
    sim.clear_log();
    let e = a.get_account(&uid).await.expect_err("client gone");
    assert_eq!(e.class, ErrorClass::Unauthorized, "{e}");
    assert!(e.to_string().contains("keyring:okta-token"), "{e}");
    assert!(e.message.contains("invalid_client"), "{e}");
    let api = sim.count(|r| r.path.starts_with("/api/"));
    let token = sim.count(|r| r.path == "/oauth2/v1/token");
    assert_eq!((api, token), (1, 1), "no loop: {:?}", sim.log());
    for text in [e.to_string(), format!("{e:?}"), format!("{a:?}")] {
        assert!(
            !text.contains("PRIVATE KEY") && !text.contains("MII"),
            "{text}"
        );
    }

    // A key the client was not registered with: refused once, no API call.
    sim.register_client(
        client,
        &fixture("test-rsa-public.pem"),
        &["okta.users.manage"],
    );
    let wrong = adapter_with(
        &base,
        &fixture("test-rsa-other-private.pem"),
        &settings,
        |_| {},
    );
    sim.clear_log();
    let e = wrong.get_account(&uid).await.expect_err("wrong key");
    assert_eq!(e.class, ErrorClass::Unauthorized);
    assert!(e.message.contains("signature is invalid"), "{e}");
    assert!(e.to_string().contains("keyring:okta-token"), "{e}");
    assert_eq!(sim.log().len(), 1, "{:?}", sim.log());
    let e = wrong.authenticate().await.expect_err("authenticate");
    assert_eq!(e.class, ErrorClass::Unauthorized);
    assert!(e.to_string().contains("keyring:okta-token"), "{e}");

    // Scopes the client was not granted: invalid_scope, permanent.
    let e = adapter_with(&base, &pem, &settings, |_| {})
        .authenticate()
        .await
        .expect_err("scope not granted");
    assert_eq!(e.class, ErrorClass::Permanent, "{e}");
    assert!(e.message.contains("invalid_scope"), "{e}");

    // A token without the groups scope: 403, permanent, sent once.
    let read_only = jwt_settings(client, "okta.users.manage", None);
    let narrow = adapter_with(&base, &pem, &read_only, |_| {});
    sim.clear_log();
    let e = narrow
        .add_membership(&uid, &group("eng"))
        .await
        .expect_err("missing scope");
    assert_eq!(e.class, ErrorClass::Permanent, "{e}");
    assert_eq!(e.status, Some(403));
    assert!(e.message.contains("lacks a scope"), "{e}");
    assert_eq!(sim.count(|r| r.path.starts_with("/api/")), 1);

    // Short-lived tokens are renewed before they expire: no 401 on the way.
    sim.register_client(
        client,
        &fixture("test-rsa-public.pem"),
        &["okta.users.manage", "okta.groups.manage"],
    );
    sim.set_token_ttl(Duration::from_secs(2));
    let short = adapter_with(&base, &pem, &settings, |_| {});
    sim.clear_log();
    for _ in 0..3 {
        assert!(short.get_account(&uid).await.unwrap().is_some());
        tokio::time::sleep(Duration::from_millis(900)).await;
    }
    assert_eq!(sim.count(|r| r.status == 401), 0);
    assert!(sim.count(|r| r.path == "/oauth2/v1/token") >= 2);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_token_endpoint_checks_client_assertions() {
    use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
    let (server, sim) = sim(OktaSimOptions::default()).await;
    let base = server.base_url();
    let client = "0oa1testclient000002";
    sim.register_client(client, &fixture("test-ec-public.pem"), &["okta.users.read"]);
    let key = EncodingKey::from_ec_pem(fixture("test-ec-private.pem").as_bytes()).unwrap();
    let other =
        EncodingKey::from_rsa_pem(fixture("test-rsa-other-private.pem").as_bytes()).unwrap();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let aud = format!("{base}/oauth2/v1/token");
    let claims = |exp: u64, aud: &str, jti: &str| serde_json::json!({"iss": client, "sub": client, "aud": aud, "iat": now, "exp": exp, "jti": jti});
    let http = reqwest::Client::new();
    let post = |assertion: String| {
        let http = http.clone();
        let url = aud.clone();
        async move {
            let r = http
                .post(url)
                .form(&[
                    ("grant_type", "client_credentials"),
                    ("scope", "okta.users.read"),
                    (
                        "client_assertion_type",
                        "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                    ),
                    ("client_assertion", &assertion),
                ])
                .send()
                .await
                .unwrap();
            let status = r.status().as_u16();
            let body: serde_json::Value = r.json().await.unwrap();
            (status, body)
        }
    };
    let es = Header::new(Algorithm::ES256);
    let good = encode(&es, &claims(now + 300, &aud, "j1"), &key).unwrap();
    let (status, body) = post(good.clone()).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["scope"], "okta.users.read");
    let (status, body) = post(good).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("invalid_client"))
    );
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("already been used")
    );
    for (assertion, why) in [
        (
            encode(&es, &claims(now - 600, &aud, "j2"), &key).unwrap(),
            "expired",
        ),
        (
            encode(
                &es,
                &claims(now + 300, "https://elsewhere/oauth2/v1/token", "j3"),
                &key,
            )
            .unwrap(),
            "audience",
        ),
        (
            encode(
                &Header::new(Algorithm::RS256),
                &claims(now + 300, &aud, "j4"),
                &other,
            )
            .unwrap(),
            "signature",
        ),
        (
            encode(&es, &claims(now + 7200, &aud, "j5"), &key).unwrap(),
            "too far",
        ),
        ("not.a.jwt".to_string(), "not a valid JWT"),
    ] {
        let (status, body) = post(assertion).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (401, Some("invalid_client")),
            "{why}: {body}"
        );
        assert!(
            body["error_description"].as_str().unwrap().contains(why),
            "{why}: {body}"
        );
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limits_are_paced_and_a_429_waits_for_the_reset() {
    let (server, sim) = sim(OktaSimOptions {
        rate_window: Duration::from_secs(2),
        ..Default::default()
    })
    .await;
    sim.limits().set_limit(Some(buckets::USERS), 3);
    let limiter = RateLimiter::new("okta", None, 4);
    let a = adapter_with(&server.base_url(), SSWS_TOKEN, &[], |o| {
        o.limiter = limiter.clone()
    });
    let creates = |r: &LoggedRequest| r.method == Method::POST && r.path == "/api/v1/users";

    // 7 creates against 3 per window: the limiter reads X-Rate-Limit-Remaining and waits
    // for X-Rate-Limit-Reset; Okta never has to refuse one.
    for i in 0..7 {
        a.create_account(&spec(i)).await.expect("create");
    }
    assert_eq!(sim.count(|r| r.status == 429), 0, "{:?}", sim.log());
    assert_eq!(sim.count(creates), 7);

    // The limit is cut mid-window: one 429, then the limiter waits for the reset.
    a.create_account(&spec(7)).await.expect("create");
    sim.limits().set_limit(Some(buckets::USERS), 1);
    sim.clear_log();
    a.create_account(&spec(8))
        .await
        .expect("create after a 429");
    sim.limits().set_limit(Some(buckets::USERS), 100);
    for i in 9..11 {
        a.create_account(&spec(i)).await.expect("create");
    }
    let log = sim.log();
    let refused: Vec<&LoggedRequest> = log.iter().filter(|r| r.status == 429).collect();
    assert_eq!(refused.len(), 1, "one 429, no hammering: {log:?}");
    assert_eq!(log.len(), 4, "3 creates and the refused attempt: {log:?}");
    let window = |t: SystemTime| t.duration_since(UNIX_EPOCH).unwrap().as_secs() / 2;
    let after = log
        .iter()
        .find(|r| r.at > refused[0].at)
        .expect("a request after the 429");
    assert!(
        window(after.at) > window(refused[0].at),
        "the retry waited for the next window"
    );
    assert_eq!(limiter.snapshot().throttled, 1, "the limiter saw the 429");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn okta_s_concurrent_limit_is_learned_and_its_429s_are_retried_not_failed() {
    // Okta lets 2 requests be in flight at once; the adapter may send 8. Every answer
    // takes a while, so they overlap.
    let (server, sim) = sim(OktaSimOptions {
        concurrency_limit: Some(2),
        faults: FaultProfile {
            latency: Some((Duration::from_millis(60), Duration::from_millis(120))),
            ..FaultProfile::none()
        },
        ..Default::default()
    })
    .await;
    let limiter = RateLimiter::new("okta", None, 8);
    let a = adapter_with(&server.base_url(), SSWS_TOKEN, &[], |o| {
        o.limiter = limiter.clone()
    });
    let started = std::time::Instant::now();
    let results: Vec<Result<_, AdapterError>> = futures::stream::iter(0..16)
        .map(|i| {
            let a = &a;
            async move { a.create_account(&spec(i)).await }
        })
        .buffer_unordered(8)
        .collect()
        .await;
    for r in &results {
        if let Err(e) = r {
            panic!("a create failed instead of waiting its turn: {e}");
        }
    }
    let refused = sim.concurrency().refused();
    assert!(refused > 0, "the limit was reached");
    assert!(sim.concurrency().peak() <= 2);
    // The first refusals teach the limiter Okta's limit: no more than the first burst.
    assert!(
        refused <= 7,
        "{refused} refusals: the limit was not learned"
    );
    assert_eq!(sim.max_creates_per_login(), 1, "no user created twice");
    assert_eq!(sim.users().len(), 17);
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "the refusals did not stall the system: {:?}",
        started.elapsed()
    );
    // After the refusals, ordinary answers: the limiter's view of the users bucket is
    // Okta's per-minute window again, not the concurrent limit.
    assert_eq!(limiter.snapshot().limit, Some(600));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_lag_writes_under_eventual_consistency() {
    let (server, sim) = sim(OktaSimOptions {
        faults: FaultProfile {
            visibility_delay: Duration::from_millis(1000),
            ..FaultProfile::none()
        },
        ..Default::default()
    })
    .await;
    let gid = sim.seed_group("eng");
    let a = ssws_adapter(&server.base_url(), 200);
    let acc = a.create_account(&spec(1)).await.expect("create");
    assert_eq!(
        a.get_account(&acc.external_id).await.unwrap(),
        None,
        "not yet visible"
    );
    // Writes see the true state: the membership can be added at once, and a second create
    // is still a conflict (login uniqueness does not lag).
    a.add_membership(&acc.external_id, &group("eng"))
        .await
        .expect("add");
    let mut other = spec(1);
    other.hris_id = "E7777".into();
    assert_eq!(
        a.create_account(&other).await.expect_err("dup").class,
        ErrorClass::Conflict
    );
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert!(a.get_account(&acc.external_id).await.unwrap().is_some());
    let m = a.list_memberships(&acc.external_id).await.unwrap();
    assert_eq!(m.len(), 1);
    assert_eq!(m[0].external_id, gid);
    server.stop().await;
}

#[test]
fn the_registry_builds_it_and_settings_are_checked() {
    install_crypto_provider();
    let secrets =
        |v: &str| MapSecrets(HashMap::from([(KEYRING_ENTRY.to_string(), Secret::new(v))]));
    let build = |settings: &[(&str, toml::Value)], secret: &str| {
        let e = entry("https://example.okta.com", settings);
        let s = secrets(secret);
        build_with(AdapterContext {
            entry: &e,
            secrets: &s,
            limiter: RateLimiter::new("okta", None, 4),
            timeouts: timeouts(),
        })
    };
    let a = build(&[], SSWS_TOKEN).expect("ssws by default");
    assert_eq!((a.system(), a.api_version()), ("okta", "v1"));
    let a = build(
        &jwt_settings("0oa1", "okta.users.read", None),
        &fixture("test-ec-private.pem"),
    )
    .expect("private_key_jwt");
    assert_eq!(a.system(), "okta");
    let err = |settings: &[(&str, toml::Value)], secret: &str| match build(settings, secret) {
        Ok(_) => panic!("should fail"),
        Err(e) => e.to_string(),
    };
    let e = err(&[("pagesize", toml::Value::Integer(5))], SSWS_TOKEN);
    assert!(e.contains("unknown setting \"pagesize\""), "{e}");
    let e = err(
        &[("auth", toml::Value::String("private_key_jwt".into()))],
        SSWS_TOKEN,
    );
    assert!(e.contains("needs client_id"), "{e}");
    let e = err(&jwt_settings("0oa1", "okta.users.read", None), SSWS_TOKEN);
    assert!(
        e.contains("keyring:okta-token") && e.contains("not a PEM private key"),
        "{e}"
    );
    assert!(!e.contains(SSWS_TOKEN), "{e}");
    let e = err(&[("page_size", toml::Value::Integer(500))], SSWS_TOKEN);
    assert!(e.contains("page_size"), "{e}");
    let e = err(&[("auth", toml::Value::String("basic".into()))], SSWS_TOKEN);
    assert!(
        e.contains("setting auth: unknown variant `basic`, expected `ssws` or `private_key_jwt`"),
        "{e}"
    );
}
