//! Unit tests of `okta`.

use super::*;
use reqwest::header::{HeaderName, HeaderValue};

fn h(pairs: &[(&str, &str)]) -> HeaderMap {
    let mut m = HeaderMap::new();
    for (k, v) in pairs {
        m.insert(
            HeaderName::from_bytes(k.as_bytes()).unwrap(),
            HeaderValue::from_str(v).unwrap(),
        );
    }
    m
}

fn okta_body(code: &str, summary: &str, causes: &[&str]) -> Vec<u8> {
    let causes: Vec<Value> = causes.iter().map(|c| json!({"errorSummary": c})).collect();
    serde_json::to_vec(&json!({
        "errorCode": code, "errorSummary": summary, "errorLink": code,
        "errorId": "oae1", "errorCauses": causes
    }))
    .unwrap()
}

#[test]
fn classification_follows_okta_error_codes() {
    let none = HeaderMap::new();
    let c = |status, body: &[u8], headers: &HeaderMap| classify_okta("okta", status, headers, body);
    let reset = (SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 5)
    .to_string();
    let e = c(
        429,
        &okta_body(
            "E0000047",
            "API call exceeded rate limit due to too many requests.",
            &[],
        ),
        &h(&[("x-rate-limit-reset", &reset)]),
    );
    let wait = e.class.retry_after().expect("waits for the reset");
    assert!(
        wait > Duration::from_secs(3) && wait <= Duration::from_secs(5),
        "{wait:?}"
    );
    assert_eq!(e.vendor_code.as_deref(), Some("E0000047"));
    assert_eq!(
        c(
            401,
            &okta_body("E0000011", "Invalid token provided", &[]),
            &none
        )
        .class,
        ErrorClass::Unauthorized
    );
    assert_eq!(
        c(
            404,
            &okta_body("E0000007", "Not found: Resource not found: x (User)", &[]),
            &none
        )
        .class,
        ErrorClass::NotFound
    );
    let dup = c(
        400,
        &okta_body(
            "E0000001",
            "Api validation failed: login",
            &["login: An object with this field already exists in the current organization"],
        ),
        &none,
    );
    assert_eq!(dup.class, ErrorClass::Conflict);
    assert!(dup.message.contains("already exists"), "{}", dup.message);
    assert_eq!(
        c(
            400,
            &okta_body(
                "E0000001",
                "Api validation failed: email",
                &["email: Does not match required pattern"]
            ),
            &none
        )
        .class,
        ErrorClass::Permanent
    );
    assert_eq!(
        c(
            403,
            &okta_body("E0000006", "You do not have permission", &[]),
            &none
        )
        .class,
        ErrorClass::Permanent
    );
    assert_eq!(
        c(
            500,
            &okta_body("E0000009", "Internal Server Error", &[]),
            &none
        )
        .class,
        ErrorClass::Transient
    );
    let e = c(
            401,
            br#"{"error":"invalid_client","error_description":"The client_assertion signature is invalid."}"#,
            &none,
        );
    assert_eq!(e.class, ErrorClass::Unauthorized);
    assert!(e.message.contains("signature is invalid"));
    assert_eq!(
        c(
            400,
            br#"{"error":"invalid_scope","error_description":"nope"}"#,
            &none
        )
        .class,
        ErrorClass::Permanent
    );
}

#[test]
fn bodies_that_are_not_okta_errors_are_classified() {
    let none = HeaderMap::new();
    let html = b"<!DOCTYPE html><html><body><h1>502 Bad Gateway</h1></body></html>";
    let e = classify_okta("okta", 502, &none, html);
    assert_eq!(e.class, ErrorClass::Transient);
    assert!(e.message.contains("HTML page"), "{}", e.message);
    assert!(e.excerpt.contains("502 Bad Gateway"));
    let e = classify_okta("okta", 403, &none, html);
    assert_eq!(e.class, ErrorClass::Permanent);
    let e = classify_okta("okta", 400, &none, b"{\"errorCode\": \"E00");
    assert_eq!(e.class, ErrorClass::Permanent);
    assert!(e.message.contains("not an Okta error"), "{}", e.message);
    assert_eq!(
        classify_okta("okta", 503, &none, b"").class,
        ErrorClass::Transient
    );
    assert!(matches!(
        classify_okta("okta", 429, &none, b"").class,
        ErrorClass::RateLimited { .. }
    ));
    assert_eq!(
        classify_okta("okta", 401, &none, b"").class,
        ErrorClass::Unauthorized
    );
}

#[test]
fn paths_and_expressions_are_encoded() {
    assert_eq!(api("/users"), "/api/v1/users");
    assert_eq!(segment("a.b+c@x.com"), "a.b%2Bc@x.com");
    assert_eq!(segment("a/b c"), "a%2Fb%20c");
    assert_eq!(quoted(r#"a"b\c"#), r#""a\"b\\c""#);
}

#[test]
fn keys_are_recognised_and_never_shown() {
    let rsa = include_str!("../../../tests/fixtures/okta/test-rsa-private.pem");
    let ec = include_str!("../../../tests/fixtures/okta/test-ec-private.pem");
    assert_eq!(
        crate::adapters::auth::jwt::signing_key(rsa).unwrap().0,
        jsonwebtoken::Algorithm::RS256
    );
    assert_eq!(
        crate::adapters::auth::jwt::signing_key(ec).unwrap().0,
        jsonwebtoken::Algorithm::ES256
    );
    assert!(crate::adapters::auth::jwt::signing_key("00abc-not-a-key").is_err());
    let public = include_str!("../../../tests/fixtures/okta/test-rsa-public.pem");
    assert!(
        crate::adapters::auth::jwt::signing_key(public).is_err(),
        "a public key cannot sign"
    );
    let mut o = OktaOptions::new(
        "okta",
        "http://127.0.0.1:1",
        Secret::new(rsa),
        "keyring:okta-key",
    );
    o.auth = OktaAuthConfig::PrivateKeyJwt {
        client_id: "0oa1".into(),
        scopes: vec!["okta.users.read".into()],
        key_id: None,
        token_url: None,
    };
    let shown = format!("{o:?}");
    assert!(
        !shown.contains("PRIVATE KEY") && !shown.contains("MII"),
        "{shown}"
    );
    let a = OktaAdapter::new(o).unwrap();
    let shown = format!("{a:?}");
    assert!(
        !shown.contains("PRIVATE KEY") && !shown.contains("MII"),
        "{shown}"
    );
    let bad = OktaOptions {
        auth: OktaAuthConfig::PrivateKeyJwt {
            client_id: "0oa1".into(),
            scopes: vec![],
            key_id: None,
            token_url: None,
        },
        ..OktaOptions::new(
            "okta",
            "http://127.0.0.1:1",
            Secret::new("00secretSSWS"),
            "keyring:okta-key",
        )
    };
    let e = OktaAdapter::new(bad).unwrap_err();
    assert_eq!(e.class, ErrorClass::Unauthorized);
    assert!(
        e.message.contains("keyring:okta-key") && !e.message.contains("00secret"),
        "{}",
        e.message
    );
}

#[test]
fn profile_sends_only_filled_known_fields() {
    let a = OktaAdapter::new(OktaOptions {
        custom_attributes: vec!["location".into()],
        ..OktaOptions::new("okta", "http://127.0.0.1:1", Secret::new("t"), "keyring:t")
    })
    .unwrap();
    let mut spec = AccountSpec {
        hris_id: "E1".into(),
        login: "a@x.com".into(),
        given_name: "A".into(),
        ..Default::default()
    };
    spec.attributes.insert("department".into(), "Eng".into());
    spec.attributes.insert("location".into(), "Berlin".into());
    spec.attributes.insert("shoeSize".into(), "44".into());
    let p = a.profile(&spec);
    assert_eq!(p.get("employeeNumber"), Some(&json!("E1")));
    assert_eq!(p.get("department"), Some(&json!("Eng")));
    assert_eq!(p.get("location"), Some(&json!("Berlin")));
    assert!(!p.contains_key("shoeSize") && !p.contains_key("email") && !p.contains_key("lastName"));
}
