//! Okta's resource and error shapes as the simulator answers them.

use super::*;

// ---------------------------------------------------------------------------------------
// Shapes
// ---------------------------------------------------------------------------------------

pub(super) fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

pub(super) fn random_alnum(n: usize) -> String {
    const CHARS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rng();
    (0..n)
        .map(|_| CHARS[rng.random_range(0..CHARS.len())] as char)
        .collect()
}

/// Okta-like ids (`00u...`, `00g...`): 20 characters, increasing, so sorting by id is
/// creation order (which is how the listings page).
pub(super) fn next_id(s: &mut Org, prefix: &str) -> String {
    s.next_id += 1;
    format!("{prefix}{:017}", s.next_id)
}

pub(super) fn new_group(s: &mut Org, name: &str, description: &str, kind: &str) -> String {
    let id = next_id(s, "00g");
    let now = Utc::now();
    s.groups.insert(
        id.clone(),
        SimGroup {
            id: id.clone(),
            name: name.to_string(),
            description: description.to_string(),
            kind: kind.to_string(),
            created: now,
            last_updated: now,
            last_membership_updated: now,
        },
    );
    id
}

pub(super) fn new_user(
    s: &mut Org,
    profile: Map<String, Value>,
    status: &str,
    has_password: bool,
    visible_at: Instant,
) -> String {
    let id = next_id(s, "00u");
    let now = Utc::now();
    let active = status != "STAGED";
    s.users.insert(
        id.clone(),
        SimUser {
            id: id.clone(),
            status: status.to_string(),
            profile,
            created: now,
            activated: active.then_some(now),
            status_changed: active.then_some(now),
            last_updated: now,
            has_password,
            visible_at,
        },
    );
    id
}

pub(super) fn find_by_login(s: &Org, login: &str) -> Option<String> {
    s.users
        .values()
        .find(|u| u.login().eq_ignore_ascii_case(login))
        .map(|u| u.id.clone())
}

pub(super) fn base(headers: &HeaderMap) -> String {
    let host = headers
        .get("host")
        .and_then(|h| h.to_str().ok())
        .unwrap_or("127.0.0.1");
    format!("http://{host}")
}

pub(super) fn user_json(u: &SimUser, base: &str) -> Value {
    let href = format!("{base}/api/v1/users/{}", u.id);
    let mut links = json!({ "self": { "href": href } });
    let actions: &[&str] = match u.status.as_str() {
        "ACTIVE" => &["suspend", "deactivate"],
        "SUSPENDED" => &["unsuspend", "deactivate"],
        "DEPROVISIONED" => &["activate"],
        "PROVISIONED" | "RECOVERY" => &["reactivate", "deactivate"],
        _ => &["activate", "deactivate"],
    };
    for a in actions {
        links[*a] =
            json!({ "href": format!("{href}/lifecycle/{a}"), "hints": { "allow": ["POST"] } });
    }
    json!({
        "id": u.id,
        "status": u.status,
        "created": ts(u.created),
        "activated": u.activated.map(ts),
        "statusChanged": u.status_changed.map(ts),
        "lastLogin": null,
        "lastUpdated": ts(u.last_updated),
        "passwordChanged": null,
        "type": { "id": "oty00000000000000001" },
        "profile": u.profile,
        "credentials": if u.has_password {
            json!({ "password": {}, "provider": { "type": "OKTA", "name": "OKTA" } })
        } else {
            json!({ "provider": { "type": "OKTA", "name": "OKTA" } })
        },
        "_links": links,
    })
}

pub(super) fn group_json(g: &SimGroup, base: &str) -> Value {
    let href = format!("{base}/api/v1/groups/{}", g.id);
    json!({
        "id": g.id,
        "created": ts(g.created),
        "lastUpdated": ts(g.last_updated),
        "lastMembershipUpdated": ts(g.last_membership_updated),
        "objectClass": ["okta:user_group"],
        "type": g.kind,
        "profile": { "name": g.name, "description": g.description },
        "_links": {
            "self": { "href": href },
            "users": { "href": format!("{href}/users") },
            "apps": { "href": format!("{href}/apps") },
        },
    })
}

pub(super) fn json_response(status: StatusCode, v: Value) -> Response {
    (status, axum::Json(v)).into_response()
}

/// Okta's error object.
pub(super) fn okta_error(
    status: StatusCode,
    code: &str,
    summary: &str,
    causes: &[String],
) -> Response {
    let causes: Vec<Value> = causes
        .iter()
        .map(|c| json!({ "errorSummary": c }))
        .collect();
    json_response(
        status,
        json!({
            "errorCode": code,
            "errorSummary": summary,
            "errorLink": code,
            "errorId": format!("oae{}", random_alnum(19)),
            "errorCauses": causes,
        }),
    )
}

pub(super) fn not_found(what: &str, kind: &str) -> Response {
    okta_error(
        StatusCode::NOT_FOUND,
        "E0000007",
        &format!("Not found: Resource not found: {what} ({kind})"),
        &[],
    )
}

pub(super) fn validation_failed(field: &str, causes: &[String]) -> Response {
    okta_error(
        StatusCode::BAD_REQUEST,
        "E0000001",
        &format!("Api validation failed: {field}"),
        causes,
    )
}

pub(super) fn already_exists(field: &str) -> Response {
    validation_failed(
        field,
        &[format!(
            "{field}: An object with this field already exists in the current organization"
        )],
    )
}

pub(super) fn bad_body() -> Response {
    okta_error(
        StatusCode::BAD_REQUEST,
        "E0000003",
        "The request body was not well-formed.",
        &[],
    )
}

pub(super) fn already_activated() -> Response {
    okta_error(
        StatusCode::FORBIDDEN,
        "E0000016",
        "Activation failed because the user is already active",
        &[],
    )
}

pub(super) fn status_forbids() -> Response {
    okta_error(
        StatusCode::FORBIDDEN,
        "E0000038",
        "This operation is not allowed in the user's current status.",
        &[],
    )
}

pub(super) fn empty(status: StatusCode) -> Response {
    let mut r = Response::new(Body::empty());
    *r.status_mut() = status;
    r
}

/// Okta's shapes for [`FailRule`] faults.
pub(super) struct OktaBodies;

impl VendorBodies for OktaBodies {
    fn malformed(&self, _req: &HeaderMap) -> Response {
        let mut r = (
            StatusCode::OK,
            "{\"id\":\"00u00000000000000999\",\"status\":\"ACTIVE\",\"profile\":{\"login\":",
        )
            .into_response();
        r.headers_mut()
            .insert("content-type", HeaderValue::from_static("application/json"));
        r
    }

    fn unexpected_shape(&self, _req: &HeaderMap) -> Response {
        json_response(
            StatusCode::OK,
            json!({ "id": 42, "status": ["ACTIVE"], "profile": "unexpected", "result": { "kind": "unexpected" } }),
        )
    }

    fn error(&self, _req: &HeaderMap, status: StatusCode, code: &str, message: &str) -> Response {
        okta_error(status, code, message, &[])
    }

    fn server_error(&self, _req: &HeaderMap) -> Response {
        okta_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "E0000009",
            "Internal Server Error",
            &[],
        )
    }
}
