//! Google's OAuth 2.0 token endpoint for service accounts with domain-wide delegation
//! (RFC 7523 JWT bearer grant, as `https://oauth2.googleapis.com/token` answers it), and
//! the bearer check, scope check and per-user quota in front of every Directory method.

use super::{Inner, error_with, forbidden, json_response, operation, query_map};
use crate::sim::fault::ThrottleStyle;
use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use rand::Rng;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

/// The Directory API's OAuth scopes.
pub mod scopes {
    pub const USER: &str = "https://www.googleapis.com/auth/admin.directory.user";
    pub const USER_READONLY: &str = "https://www.googleapis.com/auth/admin.directory.user.readonly";
    pub const GROUP: &str = "https://www.googleapis.com/auth/admin.directory.group";
    pub const GROUP_READONLY: &str =
        "https://www.googleapis.com/auth/admin.directory.group.readonly";
    pub const GROUP_MEMBER: &str = "https://www.googleapis.com/auth/admin.directory.group.member";
    pub const GROUP_MEMBER_READONLY: &str =
        "https://www.googleapis.com/auth/admin.directory.group.member.readonly";
    pub const CLOUD_PLATFORM: &str = "https://www.googleapis.com/auth/cloud-platform";
}

/// Google's token URL: the audience a service account's assertion names.
pub const GOOGLE_TOKEN_URL: &str = "https://oauth2.googleapis.com/token";
const JWT_BEARER: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
const SHORT_LIVED: &str = "Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe. Check your iat and exp values in the JWT claim.";
const UNAUTHORIZED_CLIENT: &str = "Client is unauthorized to retrieve access tokens using this method, or client not authorized for any of the scopes requested.";
const REALM: &str = "Bearer realm=\"https://accounts.google.com/\"";

/// The scopes each method accepts (any one of them), as its discovery entry lists them.
pub fn accepted_scopes(op: &str) -> &'static [&'static str] {
    use scopes::*;
    match op {
        "directory.users.list" => &[USER, USER_READONLY, CLOUD_PLATFORM],
        "directory.users.get" => &[USER, USER_READONLY],
        "directory.groups.list" | "directory.groups.get" => &[GROUP, GROUP_READONLY],
        "directory.groups.insert" => &[GROUP],
        "directory.members.list" | "directory.members.get" | "directory.members.hasMember" => {
            &[GROUP, GROUP_MEMBER, GROUP_MEMBER_READONLY, GROUP_READONLY]
        }
        "directory.members.insert" | "directory.members.delete" => &[GROUP, GROUP_MEMBER],
        op if op.starts_with("directory.users.") => &[USER],
        _ => &[],
    }
}

/// A service account allowed domain-wide delegation for these scopes.
#[derive(Debug)]
pub(super) struct ServiceAccount {
    pub public_key_pem: String,
    pub scopes: Vec<String>,
}

#[derive(Debug)]
pub(super) struct AccessToken {
    /// The impersonated user's id (None: the service account itself, no `sub`).
    pub subject: Option<String>,
    pub scopes: Vec<String>,
    pub expires: SystemTime,
    pub revoked: bool,
}

/// What a valid assertion asks for.
#[derive(Debug, PartialEq)]
pub(super) struct Grant {
    pub account: String,
    pub subject: Option<String>,
    pub scopes: Vec<String>,
}

#[derive(serde::Deserialize)]
struct Claims {
    iss: Option<String>,
    sub: Option<String>,
    aud: Option<Value>,
    scope: Option<String>,
    iat: Option<u64>,
    exp: Option<u64>,
}

/// A refusal from the token endpoint.
fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response {
    json_response(
        status,
        json!({"error": error, "error_description": description}),
    )
}

fn invalid_grant(description: &str) -> Response {
    oauth_error(StatusCode::BAD_REQUEST, "invalid_grant", description)
}

/// Check an assertion: RS256 signature by the key registered for its `iss`, `aud` one of
/// `audiences`, `iat`/`exp` a window of at most an hour around `now`, every scope in the
/// account's delegation allow-list.
pub(super) fn verify_assertion(
    assertion: &str,
    key_of: impl Fn(&str) -> Option<(String, Vec<String>)>,
    audiences: &[String],
    now: u64,
) -> Result<Grant, Response> {
    use jsonwebtoken::{Algorithm, DecodingKey, Validation};
    let malformed = || invalid_grant("Invalid JWT: the assertion is not a well-formed JWT.");
    let header = jsonwebtoken::decode_header(assertion).map_err(|_| malformed())?;
    let claims: Claims =
        jsonwebtoken::dangerous::insecure_decode_claims(assertion).map_err(|_| malformed())?;
    let account = claims.iss.clone().unwrap_or_default();
    let Some((pem, allowed)) = key_of(&account) else {
        return Err(invalid_grant("Invalid grant: account not found"));
    };
    if header.alg != Algorithm::RS256 {
        return Err(invalid_grant("Invalid JWT Signature."));
    }
    let key = DecodingKey::from_rsa_pem(pem.as_bytes())
        .map_err(|_| invalid_grant("Invalid JWT Signature."))?;
    let mut v = Validation::new(Algorithm::RS256);
    v.validate_exp = false;
    v.validate_aud = false;
    v.required_spec_claims.clear();
    if let Err(e) = jsonwebtoken::decode::<Value>(assertion, &key, &v) {
        return Err(match e.kind() {
            jsonwebtoken::errors::ErrorKind::InvalidSignature => {
                invalid_grant("Invalid JWT Signature.")
            }
            _ => malformed(),
        });
    }
    let aud_ok = match &claims.aud {
        Some(Value::String(a)) => audiences.contains(a),
        _ => false,
    };
    if !aud_ok {
        return Err(invalid_grant(&format!(
            "Invalid JWT: Failed audience check. The expected audience is {GOOGLE_TOKEN_URL}."
        )));
    }
    match (claims.iat, claims.exp) {
        (Some(iat), Some(exp)) if exp > now && iat <= now + 300 && exp <= iat + 3600 => {}
        _ => return Err(invalid_grant(SHORT_LIVED)),
    }
    let requested: Vec<String> = claims
        .scope
        .unwrap_or_default()
        .split_whitespace()
        .map(str::to_string)
        .collect();
    if requested.is_empty() {
        return Err(oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_scope",
            "Invalid OAuth scope or ID token audience provided.",
        ));
    }
    if requested.iter().any(|s| !allowed.contains(s)) {
        return Err(oauth_error(
            StatusCode::UNAUTHORIZED,
            "unauthorized_client",
            UNAUTHORIZED_CLIENT,
        ));
    }
    Ok(Grant {
        account,
        subject: claims.sub.filter(|s| !s.is_empty()),
        scopes: requested,
    })
}

/// `POST /token`: a JWT bearer grant becomes an access token for the impersonated user.
pub(super) async fn token(
    State(inner): State<Arc<Inner>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    inner.lock().token_requests += 1;
    let form = query_map(Some(String::from_utf8_lossy(&body).into_owned()));
    let grant_type = form.get("grant_type").map(String::as_str).unwrap_or("");
    if grant_type != JWT_BEARER {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            &format!("Invalid grant_type: {grant_type}"),
        );
    }
    let Some(assertion) = form.get("assertion").filter(|a| !a.is_empty()) else {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "Missing required parameter: assertion",
        );
    };
    let host = headers
        .get("host")
        .and_then(|h| h.to_str().ok())
        .unwrap_or("127.0.0.1");
    let audiences = [
        GOOGLE_TOKEN_URL.to_string(),
        "https://www.googleapis.com/oauth2/v4/token".to_string(),
        format!("http://{host}/token"),
        format!("https://{host}/token"),
    ];
    let now = epoch(SystemTime::now());
    let key_of = |iss: &str| {
        let s = inner.lock();
        s.accounts
            .get(iss)
            .map(|a| (a.public_key_pem.clone(), a.scopes.clone()))
    };
    let grant = match verify_assertion(assertion, key_of, &audiences, now) {
        Ok(g) => g,
        Err(r) => return r,
    };
    let ttl = inner.settings().token_ttl;
    let access = format!("ya29.c.{}", random_token(96));
    let mut s = inner.lock();
    let subject = match &grant.subject {
        Some(email) => match s.by_email.get(&email.to_lowercase()) {
            Some(id) => Some(id.clone()),
            None => return invalid_grant("Invalid email or User ID"),
        },
        None => None,
    };
    s.tokens.insert(
        access.clone(),
        AccessToken {
            subject,
            scopes: grant.scopes,
            expires: SystemTime::now() + ttl,
            revoked: false,
        },
    );
    drop(s);
    let mut r = json_response(
        StatusCode::OK,
        json!({
            "access_token": access,
            "expires_in": ttl.as_secs().saturating_sub(1).max(1),
            "token_type": "Bearer",
        }),
    );
    r.headers_mut().insert(
        "cache-control",
        HeaderValue::from_static("no-cache, no-store, max-age=0, must-revalidate"),
    );
    r
}

fn epoch(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs()
}

fn random_token(n: usize) -> String {
    const CHARS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut rng = rand::rng();
    (0..n)
        .map(|_| CHARS[rng.random_range(0..CHARS.len())] as char)
        .collect()
}

/// A 401 with Google's body and `WWW-Authenticate`.
fn unauthenticated(missing: bool) -> Response {
    let (reason, entry, message, www) = match missing {
        true => (
            "required",
            "Login Required.",
            "Request is missing required authentication credential. Expected OAuth 2 access token, login cookie or other valid authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project.",
            REALM.to_string(),
        ),
        false => (
            "authError",
            "Invalid Credentials",
            "Invalid Credentials",
            format!("{REALM}, error=\"invalid_token\""),
        ),
    };
    let mut r = error_with(
        StatusCode::UNAUTHORIZED,
        json!({"message": entry, "domain": "global", "reason": reason,
               "location": "Authorization", "locationType": "header"}),
        message,
    );
    if let Ok(v) = HeaderValue::from_str(&www) {
        r.headers_mut().insert("www-authenticate", v);
    }
    r
}

fn insufficient_scope(accepted: &[&str]) -> Response {
    let mut r = error_with(
        StatusCode::FORBIDDEN,
        json!({"message": "Insufficient Permission", "reason": "insufficientPermissions"}),
        "Request had insufficient authentication scopes.",
    );
    let www = format!(
        "{REALM}, error=\"insufficient_scope\", scope=\"{}\"",
        accepted.join(" ")
    );
    if let Ok(v) = HeaderValue::from_str(&www) {
        r.headers_mut().insert("www-authenticate", v);
    }
    r
}

/// Whether a token with `granted` scopes may call `op`.
pub(super) fn scope_allows(granted: &[String], op: &str) -> bool {
    accepted_scopes(op)
        .iter()
        .any(|a| granted.iter().any(|g| g == a))
}

/// In front of every Directory method: a live bearer token (401), a scope the method
/// accepts (403 `insufficientPermissions`), the user's queries-per-minute quota (403
/// `userRateLimitExceeded`), and an impersonated user who is an active admin (403
/// `forbidden`). Other paths (the token endpoint, unknown routes) pass.
pub(super) async fn authenticate(
    State(inner): State<Arc<Inner>>,
    req: Request,
    next: Next,
) -> Response {
    let Some(op) = operation(req.method(), req.uri().path()) else {
        return next.run(req).await;
    };
    let header = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let bearer = header
        .get(..7)
        .filter(|p| p.eq_ignore_ascii_case("bearer "))
        .map(|_| header[7..].trim().to_string());
    let Some(bearer) = bearer else {
        return unauthenticated(true);
    };
    let (subject, admin) = {
        let s = inner.lock();
        let Some(t) = s.tokens.get(&bearer) else {
            return unauthenticated(false);
        };
        if t.revoked || t.expires <= SystemTime::now() {
            return unauthenticated(false);
        }
        if !scope_allows(&t.scopes, op) {
            return insufficient_scope(accepted_scopes(op));
        }
        let user = t.subject.as_ref().and_then(|id| s.users.get(id));
        (
            t.subject.clone(),
            user.is_some_and(|u| u.is_admin && !u.suspended),
        )
    };
    let quota_user = query_map(req.uri().query().map(str::to_string))
        .remove("quotaUser")
        .filter(|q| !q.is_empty());
    let bucket = quota_user.or(subject).unwrap_or_default();
    let w = inner.limits.hit(&bucket);
    if !w.allowed {
        return ThrottleStyle::Google.refusal(w.retry_after_secs, req.headers());
    }
    if !admin {
        return forbidden();
    }
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::super::tests::read;
    use super::*;
    use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};

    const PRIVATE: &str = include_str!("../../../tests/fixtures/okta/test-rsa-private.pem");
    const PUBLIC: &str = include_str!("../../../tests/fixtures/okta/test-rsa-public.pem");
    const OTHER: &str = include_str!("../../../tests/fixtures/okta/test-rsa-other-private.pem");
    const SA: &str = "provisioner@accessdesk-sim.iam.gserviceaccount.com";
    const NOW: u64 = 1_800_000_000;

    fn sign(pem: &str, claims: Value) -> String {
        let key = EncodingKey::from_rsa_pem(pem.as_bytes()).expect("test key");
        encode(&Header::new(Algorithm::RS256), &claims, &key).expect("sign")
    }

    fn claims() -> Value {
        json!({"iss": SA, "sub": "admin@example.com", "scope": scopes::USER,
               "aud": GOOGLE_TOKEN_URL, "iat": NOW - 10, "exp": NOW + 3590})
    }

    fn verify(assertion: &str) -> Result<Grant, (u16, Value)> {
        let key_of =
            |iss: &str| (iss == SA).then(|| (PUBLIC.to_string(), vec![scopes::USER.to_string()]));
        verify_assertion(assertion, key_of, &[GOOGLE_TOKEN_URL.to_string()], NOW).map_err(read)
    }

    fn with(change: impl FnOnce(&mut Value)) -> String {
        let mut c = claims();
        change(&mut c);
        sign(PRIVATE, c)
    }

    #[test]
    fn a_good_assertion_is_granted_its_scopes_for_its_subject() {
        let g = verify(&sign(PRIVATE, claims())).expect("valid");
        assert_eq!(g.account, SA);
        assert_eq!(g.subject.as_deref(), Some("admin@example.com"));
        assert_eq!(g.scopes, [scopes::USER]);
        let g = verify(&with(|c| c["sub"] = Value::Null)).expect("no sub");
        assert_eq!(g.subject, None, "the service account itself");
    }

    #[test]
    fn bad_assertions_are_refused_as_google_refuses_them() {
        let cases: Vec<(&str, String, u16, &str, &str)> = vec![
            (
                "another key",
                sign(OTHER, claims()),
                400,
                "invalid_grant",
                "Invalid JWT Signature.",
            ),
            (
                "unknown account",
                with(|c| c["iss"] = json!("x@y.iam.gserviceaccount.com")),
                400,
                "invalid_grant",
                "account not found",
            ),
            (
                "wrong audience",
                with(|c| c["aud"] = json!("https://example.com/token")),
                400,
                "invalid_grant",
                "audience",
            ),
            (
                "no audience",
                with(|c| c["aud"] = Value::Null),
                400,
                "invalid_grant",
                "audience",
            ),
            (
                "expired",
                with(|c| {
                    c["iat"] = json!(NOW - 4000);
                    c["exp"] = json!(NOW - 400)
                }),
                400,
                "invalid_grant",
                "short-lived",
            ),
            (
                "too long",
                with(|c| c["exp"] = json!(NOW + 3700)),
                400,
                "invalid_grant",
                "short-lived",
            ),
            (
                "from the future",
                with(|c| {
                    c["iat"] = json!(NOW + 900);
                    c["exp"] = json!(NOW + 1800)
                }),
                400,
                "invalid_grant",
                "short-lived",
            ),
            (
                "no iat",
                with(|c| c["iat"] = Value::Null),
                400,
                "invalid_grant",
                "short-lived",
            ),
            (
                "no scope",
                with(|c| c["scope"] = json!(" ")),
                400,
                "invalid_scope",
                "scope",
            ),
            (
                "scope not delegated",
                with(|c| c["scope"] = json!(format!("{} {}", scopes::USER, scopes::GROUP))),
                401,
                "unauthorized_client",
                "not authorized for any of the scopes",
            ),
            (
                "not a JWT",
                "not.a.jwt".to_string(),
                400,
                "invalid_grant",
                "well-formed",
            ),
        ];
        for (what, assertion, status, error, text) in cases {
            let (st, body) = verify(&assertion).expect_err(what);
            assert_eq!(
                (st, body["error"].as_str()),
                (status, Some(error)),
                "{what}: {body}"
            );
            let d = body["error_description"].as_str().unwrap_or("");
            assert!(d.contains(text), "{what}: {d}");
        }
        // HS256 signed with the public key as a secret (the classic confusion): refused.
        let hs = encode(
            &Header::new(Algorithm::HS256),
            &claims(),
            &EncodingKey::from_secret(PUBLIC.as_bytes()),
        )
        .expect("hs256");
        let (st, body) = verify(&hs).expect_err("hs256");
        assert_eq!(
            (st, body["error_description"].as_str()),
            (400, Some("Invalid JWT Signature."))
        );
    }

    #[test]
    fn scopes_are_checked_per_method() {
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        let readonly = s(&[scopes::USER_READONLY]);
        assert!(scope_allows(&readonly, "directory.users.get"));
        assert!(scope_allows(&readonly, "directory.users.list"));
        assert!(!scope_allows(&readonly, "directory.users.insert"));
        assert!(!scope_allows(&readonly, "directory.groups.list"));
        let member = s(&[scopes::GROUP_MEMBER]);
        assert!(scope_allows(&member, "directory.members.insert"));
        assert!(scope_allows(&member, "directory.members.hasMember"));
        assert!(!scope_allows(&member, "directory.groups.insert"));
        assert!(!scope_allows(&member, "directory.groups.get"));
        let group_ro = s(&[scopes::GROUP_READONLY]);
        assert!(scope_allows(&group_ro, "directory.members.list"));
        assert!(!scope_allows(&group_ro, "directory.members.delete"));
        assert!(!scope_allows(&s(&[]), "directory.users.get"));
    }

    #[tokio::test]
    async fn quotas_are_per_impersonated_user_or_quota_user_and_skip_refused_calls() {
        crate::adapters::http::install_crypto_provider();
        let opts = super::super::GoogleSimOptions {
            queries_per_minute: 2,
            rate_window: std::time::Duration::from_secs(3600),
            ..Default::default()
        };
        let (server, h) = super::super::spawn(opts).await.expect("sim");
        h.seed_admin("second@example.com", "Second", "Admin")
            .expect("admin");
        let first = h.issue_token(&h.admin_email(), &[scopes::USER]);
        let second = h.issue_token("second@example.com", &[scopes::USER]);
        let (first, second) = (first.expect("token"), second.expect("token"));
        let http = reqwest::Client::new();
        let base = format!(
            "{}/admin/directory/v1/users/second@example.com",
            server.base_url()
        );
        let mut seen = Vec::new();
        for (token, query) in [
            (&first, ""),
            (&first, ""),
            (&first, ""),
            (&second, ""),
            (&first, "?quotaUser=batch"),
            (&"ya29.unknown".to_string(), ""),
            (&"ya29.unknown".to_string(), ""),
            (&second, ""),
            (&second, ""),
        ] {
            let r = http.get(format!("{base}{query}")).bearer_auth(token).send();
            let r = r.await.expect("answer");
            let status = r.status().as_u16();
            let v: Value = r.json().await.unwrap_or(Value::Null);
            let reason = v["error"]["errors"][0]["reason"].as_str().unwrap_or("");
            seen.push(format!("{status} {reason}").trim().to_string());
        }
        let quota = "403 userRateLimitExceeded";
        let expected = [
            "200",
            "200",
            quota,
            "200",
            "200",
            "401 authError",
            "401 authError",
            "200",
            quota,
        ];
        assert_eq!(seen, expected);
        assert_eq!(h.limits().refused(), 2);
        h.limits().set_limit(None, 10);
        let r = http
            .get(&base)
            .bearer_auth(&first)
            .send()
            .await
            .expect("answer");
        assert_eq!(r.status(), 200, "a raised limit applies at once");
        server.stop().await;
    }

    #[test]
    fn accepted_scopes_are_those_of_the_discovery_document() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/specs/google/admin.directory_v1.json"
        );
        let text = std::fs::read_to_string(path).expect("the discovery document");
        let doc: Value = serde_json::from_str(&text).expect("json");
        for op in super::super::OPERATIONS {
            let mut parts = op.split('.').skip(1);
            let (resource, method) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
            let listed = &doc["resources"][resource]["methods"][method]["scopes"];
            let mut listed: Vec<&str> = listed
                .as_array()
                .unwrap_or_else(|| panic!("{op} is not in the discovery document"))
                .iter()
                .filter_map(Value::as_str)
                .collect();
            let mut ours = accepted_scopes(op).to_vec();
            listed.sort();
            ours.sort();
            assert_eq!(ours, listed, "{op}");
        }
    }
}
