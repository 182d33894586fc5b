//! GitHub's JSON: users, the organisation, memberships, invitations, teams, and its error
//! bodies (`basic-error`, `validation-error`), as the description's schemas have them.

use super::{Inner, OrgRole, SimInvitation, SimTeam, SimUser, TeamRole};
use crate::sim::rules::VendorBodies;
use axum::body::{Body, Bytes};
use axum::extract::Request;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Map, Value, json};

/// Where GitHub's generic errors point.
pub(super) const DOCS: &str = "https://docs.github.com/rest";
pub(super) const DOCS_MEMBERS: &str = "https://docs.github.com/rest/orgs/members";
pub(super) const DOCS_TEAMS: &str = "https://docs.github.com/rest/teams/members";
pub(super) const DOCS_APPS: &str = "https://docs.github.com/rest/apps/apps";
pub(super) const DOCS_RATE: &str =
    "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api";
const DOCS_SECONDARY: &str = "https://docs.github.com/free-pro-team@latest/rest/overview/rate-limits-for-the-rest-api#about-secondary-rate-limits";

/// GitHub's secondary-limit message.
pub const SECONDARY_MESSAGE: &str = "You have exceeded a secondary rate limit. Please wait a few minutes before you try again. If you reach out to GitHub Support for help, please include the request ID.";

pub(super) fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// `http://host:port` of the request, for the API URLs in bodies.
pub(super) fn base(headers: &HeaderMap) -> String {
    let host = headers
        .get("host")
        .and_then(|h| h.to_str().ok())
        .unwrap_or("127.0.0.1");
    format!("http://{host}")
}

pub(super) fn json_response(status: StatusCode, v: Value) -> Response {
    let mut r = (status, v.to_string()).into_response();
    r.headers_mut().insert(
        "content-type",
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    r
}

pub(super) fn empty(status: StatusCode) -> Response {
    let mut r = Response::new(Body::empty());
    *r.status_mut() = status;
    r
}

/// GitHub's `basic-error`: `message`, `documentation_url`, `status` as a string.
pub(super) fn error(status: StatusCode, message: &str, docs: &str) -> Response {
    json_response(
        status,
        json!({"message": message, "documentation_url": docs, "status": status.as_u16().to_string()}),
    )
}

pub(super) fn not_found(docs: &str) -> Response {
    error(StatusCode::NOT_FOUND, "Not Found", docs)
}

/// 422 "Validation Failed" with one entry in `errors`.
pub(super) fn validation_failed(
    resource: &str,
    code: &str,
    field: &str,
    message: &str,
    docs: &str,
) -> Response {
    let mut e = Map::new();
    e.insert("resource".into(), json!(resource));
    e.insert("code".into(), json!(code));
    e.insert("field".into(), json!(field));
    if !message.is_empty() {
        e.insert("message".into(), json!(message));
    }
    json_response(
        StatusCode::UNPROCESSABLE_ENTITY,
        json!({"message": "Validation Failed", "errors": [e], "documentation_url": docs, "status": "422"}),
    )
}

/// 422 for a body that breaks the operation's schema, as GitHub words it.
pub(super) fn invalid_request(detail: &str, docs: &str) -> Response {
    error(
        StatusCode::UNPROCESSABLE_ENTITY,
        &format!("Invalid request.\n\n{detail}"),
        docs,
    )
}

/// A JSON object body (an empty body is an empty object), or 400 "Problems parsing JSON".
pub(super) fn parse_body(body: &Bytes, docs: &str) -> Result<Map<String, Value>, Response> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(invalid_request(
            "Invalid input: the request body must be a JSON object.",
            docs,
        )),
        Err(_) => Err(error(
            StatusCode::BAD_REQUEST,
            "Problems parsing JSON",
            docs,
        )),
    }
}

/// An optional string member of a body, one of `allowed`; 422 otherwise.
pub(super) fn enum_field<'a>(
    body: &'a Map<String, Value>,
    name: &str,
    allowed: &[&str],
    docs: &str,
) -> Result<Option<&'a str>, Response> {
    match body.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if allowed.contains(&s.as_str()) => Ok(Some(s)),
        Some(v) => Err(invalid_request(
            &format!("For 'properties/{name}', {v} is not one of {allowed:?}."),
            docs,
        )),
    }
}

/// The secondary-limit refusal: 403 (GitHub also uses 429 at times), with `retry-after`
/// when given. Used by [`crate::sim::fault::ThrottleStyle::GitHub`] too.
pub fn secondary_limit(retry_after: Option<u64>) -> Response {
    secondary_limit_with(StatusCode::FORBIDDEN, retry_after)
}

pub(super) fn secondary_limit_with(status: StatusCode, retry_after: Option<u64>) -> Response {
    let mut r = error(status, SECONDARY_MESSAGE, DOCS_SECONDARY);
    if let Some(secs) = retry_after {
        r.headers_mut()
            .insert("retry-after", HeaderValue::from(secs));
    }
    r
}

/// A 503 in GitHub's error shape (injected outages and server errors).
pub fn server_error() -> Response {
    error(StatusCode::SERVICE_UNAVAILABLE, "Service Unavailable", DOCS)
}

/// GitHub answers an unknown route, and a method a route does not have, with 404.
pub(super) async fn not_found_route(_req: Request) -> Response {
    not_found(DOCS)
}

fn node_id(prefix: &str, id: u64) -> String {
    format!("{prefix}_kgDO{id:08X}")
}

/// `{name: "{api}{suffix}"}` for each pair: the URL members of GitHub's objects.
fn urls(api: &str, pairs: &[(&str, &str)]) -> Value {
    let urls = pairs
        .iter()
        .map(|(name, suffix)| (name.to_string(), json!(format!("{api}{suffix}"))));
    Value::Object(urls.collect())
}

fn avatar(id: u64) -> String {
    format!("https://avatars.githubusercontent.com/u/{id}?v=4")
}

/// `simple-user`.
pub(super) fn simple_user(u: &SimUser, base: &str) -> Value {
    let api = format!("{base}/users/{}", u.login);
    let mut v = json!({
        "login": u.login,
        "id": u.id,
        "node_id": node_id("U", u.id),
        "avatar_url": avatar(u.id),
        "gravatar_id": "",
        "html_url": format!("https://github.com/{}", u.login),
        "type": "User",
        "user_view_type": "public",
        "site_admin": false,
    });
    let links = [
        ("url", ""),
        ("followers_url", "/followers"),
        ("following_url", "/following{/other_user}"),
        ("gists_url", "/gists{/gist_id}"),
        ("starred_url", "/starred{/owner}{/repo}"),
        ("subscriptions_url", "/subscriptions"),
        ("organizations_url", "/orgs"),
        ("repos_url", "/repos"),
        ("events_url", "/events{/privacy}"),
        ("received_events_url", "/received_events"),
    ];
    merge(&mut v, urls(&api, &links));
    v
}

/// `public-user` (`GET /users/{username}`); `private-user` for the authenticated user.
pub(super) fn full_user(u: &SimUser, base: &str, private: bool) -> Value {
    let mut v = simple_user(u, base);
    let extra = json!({
        "name": u.name, "company": null, "blog": "", "location": null, "email": u.email,
        "hireable": null, "bio": null, "twitter_username": null, "public_repos": 0,
        "public_gists": 0, "followers": 0, "following": 0,
        "created_at": ts(u.created), "updated_at": ts(u.created),
    });
    merge(&mut v, extra);
    if private {
        merge(
            &mut v,
            json!({
                "user_view_type": "private", "private_gists": 0, "total_private_repos": 0,
                "owned_private_repos": 0, "disk_usage": 0, "collaborators": 0,
                "two_factor_authentication": u.two_factor,
            }),
        );
    }
    v
}

fn merge(into: &mut Value, from: Value) {
    if let (Some(into), Value::Object(from)) = (into.as_object_mut(), from) {
        into.extend(from);
    }
}

/// `organization-simple`.
pub(super) fn org_simple(inner: &Inner, base: &str) -> Value {
    let api = format!("{base}/orgs/{}", inner.org);
    let mut v = json!({
        "login": inner.org,
        "id": inner.org_id,
        "node_id": node_id("O", inner.org_id),
        "avatar_url": avatar(inner.org_id),
        "description": format!("The {} organisation (simulated)", inner.org),
    });
    let links = [
        ("url", ""),
        ("repos_url", "/repos"),
        ("events_url", "/events"),
        ("hooks_url", "/hooks"),
        ("issues_url", "/issues"),
        ("members_url", "/members{/member}"),
        ("public_members_url", "/public_members{/member}"),
    ];
    merge(&mut v, urls(&api, &links));
    v
}

/// `team-organization`: the organisation in full, as a team carries it.
fn team_organization(inner: &Inner, base: &str) -> Value {
    let mut v = org_simple(inner, base);
    merge(
        &mut v,
        json!({
            "html_url": format!("https://github.com/{}", inner.org),
            "has_organization_projects": true, "has_repository_projects": true,
            "public_repos": 0, "public_gists": 0, "followers": 0, "following": 0,
            "type": "Organization", "created_at": "2020-01-01T00:00:00Z",
            "updated_at": "2020-01-01T00:00:00Z", "archived_at": null,
        }),
    );
    v
}

/// The organisation as a GitHub App's owner (a `simple-user` of type Organization).
pub(super) fn org_as_owner(inner: &Inner, base: &str) -> Value {
    let owner = SimUser {
        login: inner.org.clone(),
        id: inner.org_id,
        email: None,
        name: None,
        two_factor: true,
        created: Utc::now(),
    };
    let mut v = simple_user(&owner, base);
    v["type"] = json!("Organization");
    v["node_id"] = json!(node_id("O", inner.org_id));
    v
}

/// `org-membership`.
pub(super) fn org_membership(
    inner: &Inner,
    base: &str,
    user: &SimUser,
    role: OrgRole,
    pending: bool,
) -> Value {
    json!({
        "url": format!("{base}/orgs/{}/memberships/{}", inner.org, user.login),
        "state": if pending { "pending" } else { "active" },
        "role": role.as_str(),
        "direct_membership": true,
        "organization_url": format!("{base}/orgs/{}", inner.org),
        "organization": org_simple(inner, base),
        "user": simple_user(user, base),
    })
}

/// `organization-invitation`.
pub(super) fn invitation(
    inner: &Inner,
    base: &str,
    inv: &SimInvitation,
    inviter: &SimUser,
) -> Value {
    json!({
        "id": inv.id,
        "node_id": node_id("OI", inv.id),
        "login": inv.login,
        "email": inv.email,
        "role": inv.role.invitation_role(),
        "created_at": ts(inv.created),
        "failed_at": inv.failed_at.map(ts),
        "failed_reason": inv.failed_reason,
        "inviter": simple_user(inviter, base),
        "team_count": inv.team_ids.len(),
        "invitation_teams_url": format!("{base}/organizations/{}/invitations/{}/teams", inner.org_id, inv.id),
        "invitation_source": "member",
    })
}

fn team_api(inner: &Inner, base: &str, id: u64) -> String {
    format!("{base}/organizations/{}/team/{id}", inner.org_id)
}

/// `nullable-team-simple` (a team's parent).
fn team_simple(inner: &Inner, base: &str, t: &SimTeam) -> Value {
    let api = team_api(inner, base, t.id);
    json!({
        "id": t.id,
        "node_id": node_id("T", t.id),
        "url": api,
        "members_url": format!("{api}/members{{/member}}"),
        "name": t.name,
        "description": t.description,
        "permission": t.permission,
        "privacy": t.privacy,
        "notification_setting": t.notification_setting,
        "html_url": format!("https://github.com/orgs/{}/teams/{}", inner.org, t.slug),
        "repositories_url": format!("{api}/repos"),
        "slug": t.slug,
        "type": "organization",
        "organization_id": inner.org_id,
    })
}

/// `team` (listings), or `team-full` with the member count (a single team, a created one).
pub(super) fn team(
    inner: &Inner,
    base: &str,
    t: &SimTeam,
    parent: Option<&SimTeam>,
    full: Option<usize>,
) -> Value {
    let mut v = team_simple(inner, base, t);
    v["parent"] = parent.map_or(Value::Null, |p| team_simple(inner, base, p));
    if let Some(members) = full {
        merge(
            &mut v,
            json!({
                "members_count": members, "repos_count": 0,
                "created_at": ts(t.created), "updated_at": ts(t.updated),
                "organization": team_organization(inner, base),
            }),
        );
    }
    v
}

/// 200 with a `team-membership`.
pub(super) fn team_membership(
    inner: &Inner,
    base: &str,
    team: u64,
    login: &str,
    role: TeamRole,
    pending: bool,
) -> Response {
    let v = json!({
        "url": format!("{}/memberships/{login}", team_api(inner, base, team)),
        "role": role.as_str(),
        "state": if pending { "pending" } else { "active" },
    });
    json_response(StatusCode::OK, v)
}

/// GitHub's shapes for [`crate::sim::rules::FailRule`] faults.
pub(super) struct GitHubBodies;

impl VendorBodies for GitHubBodies {
    fn malformed(&self, _req: &HeaderMap) -> Response {
        let mut r = (
            StatusCode::OK,
            "{\"login\":\"octocat\",\"id\":1,\"node_id\":\"U_kgDO\",\"url\":",
        )
            .into_response();
        r.headers_mut().insert(
            "content-type",
            HeaderValue::from_static("application/json; charset=utf-8"),
        );
        r
    }

    fn unexpected_shape(&self, _req: &HeaderMap) -> Response {
        json_response(
            StatusCode::OK,
            json!({"login": 42, "id": "not a number", "state": ["active"], "role": {"kind": "unexpected"}}),
        )
    }

    fn error(&self, _req: &HeaderMap, status: StatusCode, code: &str, message: &str) -> Response {
        if status == StatusCode::UNPROCESSABLE_ENTITY {
            validation_failed("", code, "", message, DOCS)
        } else {
            error(status, message, DOCS)
        }
    }

    fn server_error(&self, _req: &HeaderMap) -> Response {
        error(StatusCode::INTERNAL_SERVER_ERROR, "Server Error", DOCS)
    }
}
