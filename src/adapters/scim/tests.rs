//! Unit tests of `scim`.

use super::*;
use crate::adapters::http::{RateLimiter, Timeouts};
use crate::config::SystemsConfig;
use crate::secrets::Secret;
use bytes::Bytes;
use reqwest::header::HeaderValue;
use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

fn resp(status: u16, body: &str) -> HttpResponse {
    HttpResponse {
        status,
        headers: HeaderMap::new(),
        body: Bytes::from(body.to_string()),
    }
}

fn classify(status: u16, body: &str) -> AdapterError {
    classify_error("scim", status, &HeaderMap::new(), body.as_bytes())
}

const SCIM2_SERVER_SPC: &str = r#"{"schemas": ["urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"], "meta": {"resourceType": "ServiceProviderConfig"}, "patch": {"supported": true}, "bulk": {"supported": true, "maxOperations": 1000, "maxPayloadSize": 1048576}, "filter": {"supported": true, "maxResults": 1000}, "changePassword": {"supported": true}, "sort": {"supported": true}, "etag": {"supported": true}, "authenticationSchemes": [{"type": "oauthbearertoken", "name": "bearer_token", "description": "HTTP Bearer Token"}]}"#;

#[test]
fn service_provider_config_is_parsed() {
    let v: Value = serde_json::from_str(SCIM2_SERVER_SPC).unwrap();
    let c = Capabilities::from_service_provider_config(&v).unwrap();
    assert!(c.patch && c.bulk && c.filter && c.sort && c.etag && c.change_password);
    assert_eq!(c.filter_max_results, Some(1000));
    assert_eq!(c.auth_schemes, vec!["oauthbearertoken".to_string()]);
    assert_eq!(c.users_endpoint, "/Users");
    assert_eq!(
        c.features(),
        [
            "patch",
            "filter(maxResults=1000)",
            "sort",
            "etag",
            "bulk",
            "changePassword"
        ]
    );
    // Missing blocks and odd spellings: missing = unsupported, "true" strings accepted.
    let v = json!({"schemas": [SCHEMA_SERVICE_PROVIDER_CONFIG], "patch": {"supported": "TRUE"},
                       "filter": {"supported": false, "maxResults": "7"}, "etag": {}});
    let c = Capabilities::from_service_provider_config(&v).unwrap();
    assert!(c.patch && !c.filter && !c.etag && !c.sort && !c.bulk);
    assert_eq!(c.filter_max_results, Some(7));
    // Not a ServiceProviderConfig at all.
    assert!(Capabilities::from_service_provider_config(&json!({"foo": 1})).is_err());
    assert!(Capabilities::from_service_provider_config(&json!([1])).is_err());
    let v = json!({"filter": {"supported": true, "maxResults": 0}});
    let c = Capabilities::from_service_provider_config(&v).unwrap();
    assert_eq!(
        c.filter_max_results, None,
        "0 is no limit, not a page size of 0"
    );
}

#[test]
fn resource_types_give_endpoints_and_the_enterprise_extension() {
    let mut c = Capabilities::default();
    c.apply_resource_types(&json!({"Resources": [
        {"name": "User", "endpoint": "/Accounts/", "schema": SCHEMA_USER,
         "schemaExtensions": [{"schema": SCHEMA_ENTERPRISE_USER, "required": false}]},
        {"name": "Group", "endpoint": "Teams", "schema": SCHEMA_GROUP}
    ]}));
    assert_eq!(c.users_endpoint, "/Accounts");
    assert_eq!(c.groups_endpoint, "/Teams");
    assert!(c.enterprise_user);
    let mut c = Capabilities::default();
    c.apply_resource_types(&json!({"Resources": [{"name": "User", "endpoint": "/Users"}]}));
    assert!(!c.enterprise_user);
    c.apply_resource_types(&json!("garbage"));
    assert_eq!(c.users_endpoint, "/Users");
}

#[test]
fn the_version_is_pinned_in_one_place() {
    assert_eq!(SCIM_VERSION, "2.0");
    for urn in [
        SCHEMA_USER,
        SCHEMA_GROUP,
        SCHEMA_ENTERPRISE_USER,
        SCHEMA_PATCH_OP,
        SCHEMA_ERROR,
        SCHEMA_LIST_RESPONSE,
    ] {
        assert!(urn.contains(":2.0:"), "{urn}");
    }
    assert_eq!(SCHEMA_USER, "urn:ietf:params:scim:schemas:core:2.0:User");
    assert_eq!(
        SCHEMA_PATCH_OP,
        "urn:ietf:params:scim:api:messages:2.0:PatchOp"
    );
}

#[test]
fn scim_errors_are_classified() {
    let e = classify(
        409,
        r#"{"schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"], "status": "409", "scimType": "uniqueness", "detail": "One or more of the attribute values are already in use or are reserved"}"#,
    );
    assert_eq!(e.class, ErrorClass::Conflict);
    assert_eq!(e.vendor_code.as_deref(), Some("uniqueness"));
    assert_eq!(e.status, Some(409));
    assert!(e.message.contains("already in use"), "{}", e.message);
    assert!(e.excerpt.contains("uniqueness"));

    let e = classify(
        404,
        r#"{"schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"], "status": "404", "detail": "User 'x' not found"}"#,
    );
    assert_eq!(e.class, ErrorClass::NotFound);
    let e = classify(
        401,
        r#"{"status": "401", "detail": "Authorization failure"}"#,
    );
    assert_eq!(e.class, ErrorClass::Unauthorized);
    let e = classify(
        403,
        r#"{"status": 403, "detail": "scope users:write missing"}"#,
    );
    assert_eq!(e.class, ErrorClass::Permanent);
    assert!(e.message.contains("not allowed") && e.message.contains("users:write"));
    for t in [
        "invalidFilter",
        "invalidValue",
        "tooMany",
        "mutability",
        "invalidSyntax",
        "invalidPath",
        "noTarget",
        "invalidVers",
        "sensitive",
    ] {
        let e = classify(
            400,
            &format!(r#"{{"status": "400", "scimType": "{t}", "detail": "bad"}}"#),
        );
        assert_eq!(e.class, ErrorClass::Permanent, "{t}");
        assert_eq!(e.vendor_code.as_deref(), Some(t));
    }
    let e = classify(
        412,
        r#"{"status": "412", "detail": "Failed to update. Resource has changed on the server"}"#,
    );
    assert_eq!(
        e.class,
        ErrorClass::Permanent,
        "412 is handled by the adapter, not retried blindly"
    );
    assert_eq!(e.vendor_code.as_deref(), Some("preconditionFailed"));
    let e = classify(
        501,
        r#"{"status": "501", "detail": "PATCH is not supported"}"#,
    );
    assert_eq!(e.class, ErrorClass::Permanent);
    assert_eq!(e.vendor_code.as_deref(), Some("notImplemented"));
    for s in [500, 502, 503, 504] {
        assert_eq!(classify(s, "").class, ErrorClass::Transient, "{s}");
    }
    let mut h = HeaderMap::new();
    h.insert("retry-after", HeaderValue::from_static("2"));
    let e = classify_error(
        "scim",
        429,
        &h,
        br#"{"error": "rate_limited", "detail": "Too many requests"}"#,
    );
    assert_eq!(
        e.class,
        ErrorClass::RateLimited {
            retry_after: Some(Duration::from_secs(2))
        }
    );
    assert_eq!(e.message, "Too many requests");
}

#[test]
fn bad_error_bodies_are_classified_with_status_and_excerpt() {
    // An HTML page from a gateway.
    let e = classify(
        502,
        "<!DOCTYPE html><html><body><h1>502 Bad Gateway</h1></body></html>",
    );
    assert_eq!(e.class, ErrorClass::Transient);
    assert_eq!(e.status, Some(502));
    assert!(e.message.contains("HTML page"), "{}", e.message);
    assert!(e.excerpt.contains("Bad Gateway"));
    // Truncated JSON.
    let e = classify(
        400,
        r#"{"schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"], "status": "400", "scimTy"#,
    );
    assert_eq!(e.class, ErrorClass::Permanent);
    assert!(e.message.contains("not JSON"), "{}", e.message);
    assert!(e.excerpt.contains("scimTy"));
    // Empty body.
    let e = classify(503, "");
    assert_eq!(
        (e.class.clone(), e.message.as_str()),
        (ErrorClass::Transient, "HTTP 503")
    );
    // JSON that is not an object; a status in the body that disagrees with HTTP.
    assert_eq!(classify(404, "[1,2]").class, ErrorClass::NotFound);
    assert_eq!(
        classify(500, r#"{"status": "400", "detail": "x"}"#).class,
        ErrorClass::Transient
    );
    // A detail that echoes a credential is redacted, in the message and the excerpt.
    let e = classify(401, r#"{"detail": "bad token=abc123secret"}"#);
    assert!(
        !e.message.contains("abc123secret") && !e.excerpt.contains("abc123secret"),
        "{e:?}"
    );
}

#[test]
fn bad_success_bodies_are_classified() {
    // HTML with 200: base_url points at a web page. Permanent, with a hint.
    let e = parse_object(
        "scim",
        &resp(200, "<html><body>Sign in</body></html>"),
        "a SCIM User",
    )
    .unwrap_err();
    assert_eq!(e.class, ErrorClass::Permanent);
    assert!(
        e.message.contains("HTML") && e.message.contains("SCIM root"),
        "{}",
        e.message
    );
    assert_eq!(e.status, Some(200));
    // Truncated JSON with 200: a cut transfer, retryable.
    let e = parse_object("scim", &resp(200, r#"{"id": "2819c2"#), "a SCIM User").unwrap_err();
    assert_eq!(e.class, ErrorClass::Transient);
    assert!(e.excerpt.contains("2819c2"));
    // Valid JSON of the wrong shape.
    let e = parse_object("scim", &resp(200, "[]"), "a SCIM User").unwrap_err();
    assert_eq!(e.class, ErrorClass::Permanent);
    let e = parse_list("scim", &resp(200, "{}"), "a ListResponse of users").unwrap_err();
    assert!(e.message.contains("not a ListResponse"), "{}", e.message);
    let e = parse_list(
        "scim",
        &resp(200, r#"{"totalResults": 1, "Resources": {"id": "x"}}"#),
        "l",
    )
    .unwrap_err();
    assert!(e.message.contains("not a list"), "{}", e.message);
    let e = parse_list(
        "scim",
        &resp(200, r#"{"totalResults": 1, "Resources": [7]}"#),
        "l",
    )
    .unwrap_err();
    assert!(e.message.contains("Resources[0]"), "{}", e.message);
    // Resources may be absent when there are none.
    let p = parse_list("scim", &resp(200, r#"{"totalResults": 0}"#), "l").unwrap();
    assert_eq!((p.resources.len(), p.total), (0, Some(0)));
    // Users missing what we need.
    assert!(
        account_from_user(&json!({"userName": "a"}))
            .unwrap_err()
            .contains("id")
    );
    assert!(
        account_from_user(&json!({"id": "1"}))
            .unwrap_err()
            .contains("userName")
    );
    assert!(account_from_user(&json!({"id": "1", "userName": "a", "active": 3})).is_err());
}

#[test]
fn users_are_read_leniently() {
    let a = account_from_user(&json!({
            "id": "u1", "userName": "ada@example.com", "externalId": "E1", "active": "False",
            "emails": [{"value": "home@x", "type": "home"}, {"value": "ada@example.com", "primary": true}]
        }))
        .unwrap();
    assert_eq!(a.external_id, "u1");
    assert!(!a.active);
    assert_eq!(a.email.as_deref(), Some("ada@example.com"));
    assert_eq!(a.hris_id.as_deref(), Some("E1"));
    let a = account_from_user(
        &json!({"id": 42, "userName": "b", "emails": [{"value": "w@x", "type": "work"}]}),
    )
    .unwrap();
    assert!(a.active, "absent active is active");
    assert_eq!(
        (a.external_id.as_str(), a.email.as_deref()),
        ("42", Some("w@x"))
    );
}

#[test]
fn filters_escape_quotes_backslashes_and_controls() {
    assert_eq!(
        filter_eq("userName", "ada@example.com"),
        r#"userName eq "ada@example.com""#
    );
    assert_eq!(
        filter_eq("userName", r#"we\ird"name"#),
        r#"userName eq "we\\ird\"name""#
    );
    assert_eq!(
        filter_eq("displayName", "a\nb\u{1}"),
        r#"displayName eq "a\nb\u0001""#
    );
    assert_eq!(
        filter_eq("displayName", "Eng \"core\" ü"),
        r#"displayName eq "Eng \"core\" ü""#
    );
    // In the URL: spaces are %20 (a '+' would be a literal plus to some providers).
    assert_eq!(
        percent_encode(r#"userName eq "a+b c""#),
        "userName%20eq%20%22a%2Bb%20c%22"
    );
    assert_eq!(percent_encode("ü&="), "%C3%BC%26%3D");
    assert_eq!(
        with_query(
            "/Users",
            &[
                ("filter", filter_eq("userName", "x")),
                ("count", "2".into())
            ]
        ),
        "/Users?filter=userName%20eq%20%22x%22&count=2"
    );
}

fn spec() -> AccountSpec {
    let mut attributes = BTreeMap::new();
    attributes.insert("department".to_string(), "R&D".to_string());
    attributes.insert("costCenter".to_string(), "CC-1".to_string());
    attributes.insert("title".to_string(), "Engineer".to_string());
    attributes.insert("location".to_string(), "Berlin".to_string());
    AccountSpec {
        hris_id: "E1".into(),
        login: "ada@example.com".into(),
        email: "ada@example.com".into(),
        given_name: "Ada".into(),
        family_name: "Lovelace".into(),
        display_name: "Ada Lovelace".into(),
        attributes,
        manager_account: None,
    }
}

#[test]
fn create_body_maps_the_spec() {
    let b = create_body(&spec(), true);
    assert_eq!(b["schemas"], json!([SCHEMA_USER, SCHEMA_ENTERPRISE_USER]));
    assert_eq!(b["userName"], "ada@example.com");
    assert_eq!(b["externalId"], "E1");
    assert_eq!(
        b["name"],
        json!({"givenName": "Ada", "familyName": "Lovelace"})
    );
    assert_eq!(
        b["emails"],
        json!([{"value": "ada@example.com", "type": "work", "primary": true}])
    );
    assert_eq!(b["active"], true);
    assert_eq!(b["title"], "Engineer");
    assert_eq!(
        b[SCHEMA_ENTERPRISE_USER],
        json!({"employeeNumber": "E1", "department": "R&D", "costCenter": "CC-1"})
    );
    assert!(b.get("location").is_none());
    let b = create_body(&spec(), false);
    assert_eq!(b["schemas"], json!([SCHEMA_USER]));
    assert!(b.get(SCHEMA_ENTERPRISE_USER).is_none());
}

#[test]
fn updates_send_only_the_given_fields() {
    let only_name = AccountSpec {
        display_name: "Countess".into(),
        attributes: [("department".to_string(), "Math".to_string())].into(),
        ..Default::default()
    };
    assert_eq!(
        update_ops(&only_name, true),
        vec![
            json!({"op": "replace", "path": "displayName", "value": "Countess"}),
            json!({"op": "replace", "path": format!("{SCHEMA_ENTERPRISE_USER}:department"), "value": "Math"}),
        ]
    );
    assert_eq!(update_ops(&only_name, false).len(), 1);
    assert!(update_ops(&AccountSpec::default(), true).is_empty());
    // The PUT fallback applies the same fields onto what it read, keeping the rest.
    let mut user = json!({"schemas": [SCHEMA_USER], "id": "u1", "userName": "ada", "name": {"givenName": "Ada", "familyName": "L"}})
            .as_object()
            .unwrap()
            .clone();
    apply_fields(&mut user, spec_fields(&only_name, true));
    assert_eq!(user["name"]["familyName"], "L");
    assert_eq!(user["displayName"], "Countess");
    assert_eq!(
        user["schemas"],
        json!([SCHEMA_USER, SCHEMA_ENTERPRISE_USER])
    );
}

#[test]
fn member_edits_are_idempotent() {
    let mut g = json!({"id": "g", "displayName": "eng"})
        .as_object()
        .unwrap()
        .clone();
    assert_eq!(
        edit_members(&mut g, "u1", false),
        Ok(false),
        "remove from absent members"
    );
    assert_eq!(edit_members(&mut g, "u1", true), Ok(true));
    assert_eq!(
        edit_members(&mut g, "u1", true),
        Ok(false),
        "already a member"
    );
    assert_eq!(edit_members(&mut g, "u2", true), Ok(true));
    assert_eq!(edit_members(&mut g, "u1", false), Ok(true));
    assert_eq!(g["members"], json!([{"value": "u2"}]));
    let mut bad = json!({"members": "u1"}).as_object().unwrap().clone();
    assert!(edit_members(&mut bad, "u1", true).is_err());
    let grp = json!({"members": [{"value": "u1"}, {"value": "g2", "type": "Group"}, {"display": "no value"}]});
    assert_eq!(
        member_values(&grp).unwrap(),
        vec![("u1".into(), false), ("g2".into(), true)]
    );
}

#[test]
fn paging_and_versions() {
    assert_eq!(next_start(1, 10, 10, Some(25)), Some(11));
    assert_eq!(next_start(21, 10, 5, Some(25)), None);
    // maxResults smaller than asked: advance by what came back.
    assert_eq!(next_start(1, 10, 7, Some(25)), Some(8));
    // No totalResults: a full page means "maybe more".
    assert_eq!(next_start(1, 10, 10, None), Some(11));
    assert_eq!(next_start(11, 10, 3, None), None);
    assert_eq!(parse_cursor("s", Some("11")).unwrap(), 11);
    assert_eq!(parse_cursor("s", None).unwrap(), 1);
    assert_eq!(
        parse_cursor("s", Some("0")).unwrap_err().class,
        ErrorClass::Permanent
    );
    assert!(parse_cursor("s", Some("abc")).is_err());

    let mut r = resp(200, "{}");
    let meta = json!({"meta": {"version": "W/\"3\""}})
        .as_object()
        .unwrap()
        .clone();
    assert_eq!(version_of(&r, &meta).as_deref(), Some("W/\"3\""));
    let bare = json!({"meta": {"version": "abc"}})
        .as_object()
        .unwrap()
        .clone();
    assert_eq!(version_of(&r, &bare).as_deref(), Some("\"abc\""));
    r.headers
        .insert("etag", HeaderValue::from_static("W/\"4\""));
    assert_eq!(
        version_of(&r, &meta).as_deref(),
        Some("W/\"4\""),
        "the header wins"
    );
    assert_eq!(version_of(&resp(200, "{}"), &Map::new()), None);
    let e = classify(409, r#"{"detail": "version mismatch"}"#);
    assert!(version_mismatch(&e, true) && !version_mismatch(&e, false));
    let e = classify(409, r#"{"scimType": "uniqueness"}"#);
    assert!(!version_mismatch(&e, true));
}

// -- an adapter against a small in-process provider ---------------------------------

use crate::adapters::kit::testkit::FixedSecret as Fixed;

const TOKEN: &str = "unit-test-token-5f1c9e";

fn adapter(base_url: &str, settings: &str) -> ScimAdapter {
    let text = format!(
        "[systems.scim-unit]\nkind = \"scim\"\nbase_url = \"{base_url}\"\ncredential = \"keyring:scim-unit-token\"\n[systems.scim-unit.settings]\n{settings}\n"
    );
    let cfg = SystemsConfig::parse(Path::new("systems.toml"), &text).unwrap();
    let entry = &cfg.catalog.systems["scim-unit"];
    let secrets = Fixed(Secret::new(TOKEN));
    let ctx = AdapterContext {
        entry,
        secrets: &secrets,
        limiter: RateLimiter::new("scim-unit", None, 4),
        timeouts: Timeouts {
            connect: Duration::from_secs(2),
            request: Duration::from_secs(5),
        },
    };
    ScimAdapter::new(&ctx).unwrap().with_retry(RetryPolicy {
        max_attempts: 2,
        max_elapsed: Duration::from_secs(5),
        base: Duration::from_millis(10),
        cap: Duration::from_millis(50),
    })
}

#[test]
fn settings_are_checked_and_debug_hides_the_token() {
    let a = adapter(
        "http://127.0.0.1:9/v2",
        "page_size = 10\nuse_patch = false\nsort_by = \"\"",
    );
    assert_eq!(a.settings().page_size, Some(10));
    assert!(!a.settings().use_patch && a.settings().sort_by.is_none());
    let dbg = format!("{a:?}");
    assert!(!dbg.contains(TOKEN), "{dbg}");
    assert!(
        dbg.contains("keyring:scim-unit-token") && dbg.contains("127.0.0.1:9/v2"),
        "{dbg}"
    );
    for (bad, why) in [
        ("page_size = 0", "1 to 1000"),
        ("use_filter = \"no\"", "setting use_filter: invalid type"),
        ("pagesize = 5", "unknown setting"),
    ] {
        let text = format!(
            "[systems.s]\nkind = \"scim\"\nbase_url = \"http://x\"\ncredential = \"keyring:t\"\n[systems.s.settings]\n{bad}\n"
        );
        let cfg = SystemsConfig::parse(Path::new("systems.toml"), &text).unwrap();
        let e = ScimSettings::from_entry(&cfg.catalog.systems["s"]).unwrap_err();
        assert!(e.to_string().contains(why), "{e}");
    }
    let text = "[systems.s]\nkind = \"scim\"\napi_version = \"1.1\"\nbase_url = \"http://x\"\ncredential = \"keyring:t\"\n";
    let cfg = SystemsConfig::parse(Path::new("systems.toml"), text).unwrap();
    let ctx = AdapterContext {
        entry: &cfg.catalog.systems["s"],
        secrets: &Fixed(Secret::new(TOKEN)),
        limiter: RateLimiter::new("s", None, 1),
        timeouts: Timeouts::default(),
    };
    let e = ScimAdapter::new(&ctx).unwrap_err();
    assert!(e.to_string().contains("SCIM 2.0"), "{e}");
}

/// A provider with one user, ETags, no PATCH; a "concurrent writer" bumps the version
/// right after each of the next `bumps` reads.
#[derive(Default)]
struct Mock {
    version: u64,
    active: bool,
    bumps: u32,
    puts: u32,
    bad_if_match: u32,
}

async fn mock_provider(bumps: u32, active: bool) -> (crate::sim::SimServer, Arc<Mutex<Mock>>) {
    use axum::extract::State;
    use axum::http::{HeaderMap as AxHeaders, StatusCode};
    use axum::response::IntoResponse;
    use axum::routing::get as route_get;
    type S = Arc<Mutex<Mock>>;
    let state: S = Arc::new(Mutex::new(Mock {
        version: 1,
        active,
        bumps,
        ..Default::default()
    }));
    fn user(m: &Mock) -> axum::response::Response {
        let tag = format!("W/\"{}\"", m.version);
        let body = json!({"schemas": [SCHEMA_USER], "id": "u1", "userName": "ada", "active": m.active,
                              "meta": {"resourceType": "User", "version": tag}});
        let mut r = axum::Json(body).into_response();
        r.headers_mut()
            .insert("etag", HeaderValue::from_str(&tag).unwrap());
        r
    }
    let app = axum::Router::new()
            .route("/v2/ServiceProviderConfig", route_get(|| async {
                axum::Json(json!({"schemas": [SCHEMA_SERVICE_PROVIDER_CONFIG], "patch": {"supported": false},
                    "filter": {"supported": true, "maxResults": 50}, "etag": {"supported": true}, "sort": {"supported": false}}))
            }))
            .route(
                "/v2/Users/u1",
                route_get(|State(s): State<S>| async move {
                    let mut m = s.lock().unwrap();
                    let r = user(&m);
                    if m.bumps > 0 {
                        m.bumps -= 1;
                        m.version += 1;
                    }
                    r
                })
                .put(|State(s): State<S>, h: AxHeaders, axum::Json(body): axum::Json<Value>| async move {
                    let mut m = s.lock().unwrap();
                    m.puts += 1;
                    let want = format!("W/\"{}\"", m.version);
                    if h.get("if-match").and_then(|v| v.to_str().ok()) != Some(want.as_str()) {
                        m.bad_if_match += 1;
                        return (StatusCode::PRECONDITION_FAILED, axum::Json(json!({"schemas": [SCHEMA_ERROR], "status": "412",
                            "detail": "Failed to update. Resource has changed on the server"}))).into_response();
                    }
                    m.version += 1;
                    m.active = body["active"].as_bool().unwrap_or(true);
                    user(&m)
                }),
            )
            // /ResourceTypes and /Schemas/...: 404, so discovery falls back to defaults.
            .fallback(|| async {
                (StatusCode::NOT_FOUND, axum::Json(json!({"schemas": [SCHEMA_ERROR], "status": "404", "detail": "no such endpoint"})))
            })
            .with_state(state.clone());
    (crate::sim::SimServer::spawn(app).await.unwrap(), state)
}

#[tokio::test]
async fn a_412_is_re_read_and_retried_once() {
    let (srv, st) = mock_provider(1, true).await;
    let a = adapter(&format!("{}/v2", srv.base_url()), "");
    a.deactivate_account("u1").await.unwrap();
    let m = st.lock().unwrap();
    assert_eq!((m.puts, m.bad_if_match, m.active), (2, 1, false));
}

#[tokio::test]
async fn a_persistent_412_is_transient_after_one_retry() {
    let (srv, st) = mock_provider(100, true).await;
    let a = adapter(&format!("{}/v2", srv.base_url()), "");
    let e = a.deactivate_account("u1").await.unwrap_err();
    assert_eq!(e.class, ErrorClass::Transient, "{e}");
    assert_eq!(e.status, Some(412));
    assert!(e.message.contains("twice in a row"), "{}", e.message);
    assert_eq!(st.lock().unwrap().puts, 2, "one retry, not a loop");
    let c = a.provider().await.unwrap();
    assert!(!c.patch && c.etag && !c.enterprise_user);
}

#[tokio::test]
async fn a_no_op_put_is_not_sent() {
    let (srv, st) = mock_provider(0, false).await;
    let a = adapter(&format!("{}/v2", srv.base_url()), "");
    a.deactivate_account("u1").await.unwrap();
    assert_eq!(st.lock().unwrap().puts, 0);
    // Without ETags (turned off in settings) the PUT carries no If-Match and the mock
    // refuses it: proof that the setting is honoured.
    let a = adapter(&format!("{}/v2", srv.base_url()), "use_etag = false");
    let e = a.reactivate_account("u1").await.unwrap_err();
    assert_eq!(e.status, Some(412));
}

#[tokio::test]
async fn a_wrong_base_url_says_so() {
    let (srv, _st) = mock_provider(0, true).await;
    let a = adapter(&format!("{}/scim", srv.base_url()), "");
    let e = a.authenticate().await.unwrap_err();
    assert_eq!(e.class, ErrorClass::Permanent);
    assert!(e.message.contains("SCIM root"), "{}", e.message);
}
