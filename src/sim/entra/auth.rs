//! The Microsoft identity platform's token endpoint for the client-credentials grant
//! (`https://login.microsoftonline.com/{tenant}/oauth2/v2.0/token`), the bearer and
//! permission check and the per-app throttle window in front of every Graph route, and
//! `GET /v1.0/applications`.

use super::paging::{Query, collection};
use super::{
    GRAPH_ROOT, Inner, Operation, error, json_response, operation, query_map, random_guid, ts,
};
use crate::sim::fault::ThrottleStyle;
use axum::body::Bytes;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use chrono::{DateTime, Utc};
use rand::Rng;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::SystemTime;

/// The only scope the client-credentials grant accepts for Graph.
pub const GRAPH_SCOPE: &str = "https://graph.microsoft.com/.default";
const INSUFFICIENT: &str = "Insufficient privileges to complete the operation.";
const WWW_AUTHENTICATE: &str = "Bearer realm=\"\", authorization_uri=\"https://login.microsoftonline.com/common/oauth2/authorize\", client_id=\"00000003-0000-0000-c000-000000000000\"";

/// The application permissions (`roles`) each operation accepts, any one of them, as
/// Graph's permission reference lists them for application callers.
pub fn accepted_roles(op: Operation) -> &'static [&'static str] {
    match op {
        Operation::ReadUsers => &[
            "User.Read.All",
            "User.ReadWrite.All",
            "Directory.Read.All",
            "Directory.ReadWrite.All",
        ],
        Operation::WriteUsers => &["User.ReadWrite.All", "Directory.ReadWrite.All"],
        Operation::ReadGroups | Operation::ReadMembers => &[
            "GroupMember.Read.All",
            "GroupMember.ReadWrite.All",
            "Group.Read.All",
            "Group.ReadWrite.All",
            "Directory.Read.All",
            "Directory.ReadWrite.All",
        ],
        Operation::WriteMembers => &[
            "GroupMember.ReadWrite.All",
            "Group.ReadWrite.All",
            "Directory.ReadWrite.All",
        ],
        Operation::ReadApplications => &[
            "Application.Read.All",
            "Application.ReadWrite.All",
            "Directory.Read.All",
        ],
    }
}

/// An app registration with one client secret.
#[derive(Debug, Clone)]
pub(super) struct App {
    pub object_id: String,
    pub display_name: String,
    pub secret: String,
    pub roles: Vec<String>,
    pub key_id: String,
    pub secret_start: DateTime<Utc>,
    pub secret_end: DateTime<Utc>,
    pub created: DateTime<Utc>,
}

#[derive(Debug)]
pub(super) struct AccessToken {
    pub client_id: String,
    pub roles: Vec<String>,
    pub expires: SystemTime,
    pub revoked: bool,
}

/// An Entra token-endpoint refusal: `error`, `error_description` starting with the
/// AADSTS code, and the fields Entra adds.
fn aadsts(status: StatusCode, error: &str, code: u32, text: &str) -> Response {
    let trace = random_guid();
    let now = Utc::now();
    json_response(
        status,
        json!({
            "error": error,
            "error_description": format!(
                "AADSTS{code}: {text} Trace ID: {trace} Correlation ID: {} Timestamp: {}",
                random_guid(), now.format("%Y-%m-%d %H:%M:%SZ")
            ),
            "error_codes": [code],
            "timestamp": now.format("%Y-%m-%d %H:%M:%SZ").to_string(),
            "trace_id": trace,
            "correlation_id": random_guid(),
            "error_uri": format!("https://login.microsoftonline.com/error?code={code}"),
        }),
    )
}

/// Check a client-credentials request's form: the app it authenticates, or the refusal.
pub(super) fn check_grant(
    inner: &Inner,
    tenant: &str,
    form: &std::collections::HashMap<String, String>,
    now: DateTime<Utc>,
) -> Result<App, Response> {
    let field = |k: &str| form.get(k).map(String::as_str).unwrap_or("");
    let tenant_ok = tenant.eq_ignore_ascii_case(&inner.tenant_id)
        || inner.domains.iter().any(|d| d.eq_ignore_ascii_case(tenant));
    if !tenant_ok {
        return Err(aadsts(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            90002,
            &format!(
                "Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID and are signing in to the correct cloud."
            ),
        ));
    }
    if field("grant_type") != "client_credentials" {
        return Err(aadsts(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            70003,
            "The app requested an unsupported grant type.",
        ));
    }
    let client_id = field("client_id");
    let Some(app) = inner.lock().apps.get(client_id).cloned() else {
        return Err(aadsts(
            StatusCode::BAD_REQUEST,
            "unauthorized_client",
            700016,
            &format!(
                "Application with identifier '{client_id}' was not found in the directory '{}'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant.",
                inner.tenant_id
            ),
        ));
    };
    let secret = field("client_secret");
    if secret.is_empty() {
        return Err(aadsts(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            7000216,
            "'client_assertion', 'client_secret' or 'request' is required for the 'client_credentials' grant type.",
        ));
    }
    if secret != app.secret {
        return Err(aadsts(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            7000215,
            &format!(
                "Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '{client_id}'."
            ),
        ));
    }
    if app.secret_end <= now {
        return Err(aadsts(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            7000222,
            &format!(
                "The provided client secret keys for app '{client_id}' are expired. Visit the Azure portal to create new keys for your app."
            ),
        ));
    }
    let scope = field("scope");
    if scope != GRAPH_SCOPE && scope != "00000003-0000-0000-c000-000000000000/.default" {
        return Err(aadsts(
            StatusCode::BAD_REQUEST,
            "invalid_scope",
            1002012,
            &format!(
                "The provided value for scope {scope} is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI)."
            ),
        ));
    }
    Ok(app)
}

/// `POST /{tenant}/oauth2/v2.0/token`.
pub(super) async fn token(
    State(inner): State<Arc<Inner>>,
    Path(tenant): Path<String>,
    body: Bytes,
) -> Response {
    inner.lock().token_requests += 1;
    let form = query_map(Some(&String::from_utf8_lossy(&body)));
    let app = match check_grant(&inner, &tenant, &form, Utc::now()) {
        Ok(app) => app,
        Err(r) => return r,
    };
    let ttl = inner.settings().token_ttl;
    let client_id = form.get("client_id").map_or("", String::as_str);
    let access = mint(&inner, client_id, app.roles, ttl);
    let secs = ttl.as_secs().saturating_sub(1).max(1);
    json_response(
        StatusCode::OK,
        json!({
            "token_type": "Bearer",
            "expires_in": secs,
            "ext_expires_in": secs,
            "access_token": access,
        }),
    )
}

/// Issue an access token for `client_id` with these roles.
pub(super) fn mint(
    inner: &Inner,
    client_id: &str,
    roles: Vec<String>,
    ttl: std::time::Duration,
) -> String {
    const CHARS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut rng = rand::rng();
    let tail: String = (0..120)
        .map(|_| CHARS[rng.random_range(0..CHARS.len())] as char)
        .collect();
    let access = format!("eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.{tail}");
    inner.lock().tokens.insert(
        access.clone(),
        AccessToken {
            client_id: client_id.to_string(),
            roles,
            expires: SystemTime::now() + ttl,
            revoked: false,
        },
    );
    access
}

fn unauthenticated(message: &str) -> Response {
    let mut r = error(
        StatusCode::UNAUTHORIZED,
        "InvalidAuthenticationToken",
        message,
    );
    r.headers_mut().insert(
        "www-authenticate",
        HeaderValue::from_static(WWW_AUTHENTICATE),
    );
    r
}

/// Whether a token with `roles` may perform `op`.
pub(super) fn allows(roles: &[String], op: Operation) -> bool {
    accepted_roles(op)
        .iter()
        .any(|a| roles.iter().any(|r| r == a))
}

/// `x-ms-throttle-limit-percentage` for a window with `remaining` of `limit` left: the
/// share used, once above 0.8.
pub(super) fn limit_percentage(limit: u32, remaining: u32) -> Option<String> {
    let used = f64::from(limit.saturating_sub(remaining)) / f64::from(limit.max(1));
    (used > 0.8).then(|| format!("{:.2}", used.min(1.0)))
}

/// In front of every Graph route: a live bearer token (401 `InvalidAuthenticationToken`),
/// a permission the route accepts (403 `Authorization_RequestDenied`), and the app's
/// throttle window (429 `TooManyRequests`). Other paths pass.
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
        .map(|_| header[7..].trim().to_string())
        .filter(|b| !b.is_empty());
    let Some(bearer) = bearer else {
        return unauthenticated("Access token is empty.");
    };
    let client_id = {
        let s = inner.lock();
        let Some(t) = s.tokens.get(&bearer) else {
            return unauthenticated("Access token validation failure. Invalid audience.");
        };
        if t.revoked {
            return unauthenticated("Access token has been revoked.");
        }
        if t.expires <= SystemTime::now() {
            return unauthenticated("Lifetime validation failed, the token is expired.");
        }
        if !allows(&t.roles, op) {
            return error(
                StatusCode::FORBIDDEN,
                "Authorization_RequestDenied",
                INSUFFICIENT,
            );
        }
        t.client_id.clone()
    };
    let w = inner.limits.hit(&client_id);
    let mut resp = match w.allowed {
        true => next.run(req).await,
        false => {
            let mut r = ThrottleStyle::Graph.refusal(w.retry_after_secs, req.headers());
            let scope = format!(
                "Tenant_Application/ReadWrite/{client_id}/{}",
                inner.tenant_id
            );
            if let Ok(v) = HeaderValue::from_str(&scope) {
                r.headers_mut().insert("x-ms-throttle-scope", v);
            }
            r
        }
    };
    if let Some(Ok(v)) = limit_percentage(w.limit, w.remaining).map(|p| HeaderValue::from_str(&p)) {
        resp.headers_mut()
            .insert("x-ms-throttle-limit-percentage", v);
    }
    resp
}

/// An application as Graph returns it, with its one password credential (never the
/// secret: Graph shows only its first three characters as `hint`).
pub(super) fn application_json(client_id: &str, app: &App) -> Value {
    json!({
        "id": app.object_id,
        "appId": client_id,
        "displayName": app.display_name,
        "createdDateTime": ts(app.created),
        "signInAudience": "AzureADMyOrg",
        "identifierUris": [],
        "tags": [],
        "passwordCredentials": [{
            "customKeyIdentifier": null,
            "displayName": "accessdesk",
            "endDateTime": ts(app.secret_end),
            "hint": app.secret.chars().take(3).collect::<String>(),
            "keyId": app.key_id,
            "secretText": null,
            "startDateTime": ts(app.secret_start),
        }],
    })
}

/// `GET /v1.0/applications`, with `$filter=appId eq '…'` (or `displayName eq`).
pub(super) async fn applications(
    State(inner): State<Arc<Inner>>,
    q: Query,
) -> Result<Response, Response> {
    let terms = q.filter(&["appId", "displayName"])?;
    let d = inner.lock();
    let apps: Vec<Value> = d
        .apps
        .iter()
        .filter(|(id, app)| {
            terms.iter().all(|t| match t.field.as_str() {
                "appId" => t.matches(&json!(id)),
                _ => t.matches(&json!(app.display_name)),
            })
        })
        .map(|(id, app)| application_json(id, app))
        .collect();
    Ok(collection(
        &format!("{GRAPH_ROOT}/$metadata#applications"),
        apps,
        None,
    ))
}

#[cfg(test)]
mod tests {
    use super::super::tests::read;
    use super::*;
    use std::collections::HashMap;

    fn inner_with_app(end: DateTime<Utc>) -> Arc<Inner> {
        let (inner, _) = super::super::handle::tests::inner();
        let now = Utc::now();
        inner.lock().apps.insert(
            "c1".into(),
            App {
                object_id: "o1".into(),
                display_name: "accessdesk".into(),
                secret: "s3cr3t-value".into(),
                roles: vec!["User.Read.All".into()],
                key_id: "k1".into(),
                secret_start: now,
                secret_end: end,
                created: now,
            },
        );
        inner
    }

    fn form(change: &[(&str, &str)]) -> HashMap<String, String> {
        let mut f: HashMap<String, String> = [
            ("grant_type", "client_credentials"),
            ("client_id", "c1"),
            ("client_secret", "s3cr3t-value"),
            ("scope", GRAPH_SCOPE),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        for (k, v) in change {
            f.insert(k.to_string(), v.to_string());
        }
        f
    }

    #[test]
    fn grants_are_checked_as_entra_checks_them() {
        let now = Utc::now();
        let inner = inner_with_app(now + chrono::Duration::days(30));
        let tenant = inner.tenant_id.clone();
        assert!(check_grant(&inner, &tenant, &form(&[]), now).is_ok());
        assert!(
            check_grant(&inner, "EXAMPLE.com", &form(&[]), now).is_ok(),
            "a domain"
        );
        for (tenant, change, status, err, code) in [
            ("other.com", vec![], 400, "invalid_request", 90002),
            (
                &*tenant,
                vec![("grant_type", "password")],
                400,
                "unsupported_grant_type",
                70003,
            ),
            (
                &*tenant,
                vec![("client_id", "nobody")],
                400,
                "unauthorized_client",
                700016,
            ),
            (
                &*tenant,
                vec![("client_secret", "wrong")],
                401,
                "invalid_client",
                7000215,
            ),
            (
                &*tenant,
                vec![("client_secret", "")],
                401,
                "invalid_client",
                7000216,
            ),
            (
                &*tenant,
                vec![("scope", "User.Read.All")],
                400,
                "invalid_scope",
                1002012,
            ),
        ] {
            let (st, v) = read(check_grant(&inner, tenant, &form(&change), now).expect_err(err));
            assert_eq!((st, v["error"].as_str()), (status, Some(err)), "{change:?}");
            assert_eq!(v["error_codes"], json!([code]));
            let d = v["error_description"].as_str().unwrap_or("");
            assert!(d.starts_with(&format!("AADSTS{code}: ")), "{d}");
            assert!(!d.contains("s3cr3t"), "no secret in errors: {d}");
        }
        let expired = inner_with_app(now - chrono::Duration::seconds(1));
        let (st, v) = read(check_grant(&expired, &tenant, &form(&[]), now).expect_err("expired"));
        assert_eq!((st, v["error_codes"][0].as_u64()), (401, Some(7000222)));
    }

    #[test]
    fn reads_accept_the_read_write_permissions_and_writes_need_them() {
        let r = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        let rw = r(&["User.ReadWrite.All", "GroupMember.ReadWrite.All"]);
        for op in [
            Operation::ReadUsers,
            Operation::WriteUsers,
            Operation::ReadGroups,
            Operation::ReadMembers,
            Operation::WriteMembers,
        ] {
            assert!(allows(&rw, op), "{op:?}");
        }
        assert!(!allows(&rw, Operation::ReadApplications));
        let ro = r(&["User.Read.All", "Group.Read.All"]);
        assert!(allows(&ro, Operation::ReadUsers) && allows(&ro, Operation::ReadMembers));
        assert!(!allows(&ro, Operation::WriteUsers) && !allows(&ro, Operation::WriteMembers));
        assert!(!allows(&[], Operation::ReadGroups));
    }

    #[test]
    fn the_limit_percentage_appears_above_eighty_percent() {
        assert_eq!(limit_percentage(10, 3), None, "70%");
        assert_eq!(limit_percentage(10, 2), None, "80% is not above");
        assert_eq!(limit_percentage(10, 1).as_deref(), Some("0.90"));
        assert_eq!(limit_percentage(10, 0).as_deref(), Some("1.00"));
        assert_eq!(limit_percentage(0, 0).as_deref(), None);
    }
}
