//! Organisation members, memberships and invitations; users.

use super::auth::Caller;
use super::paging::{Listing, Query};
use super::shapes::{
    self, DOCS, DOCS_MEMBERS, empty, invalid_request, json_response, not_found, validation_failed,
};
use super::{ADMIN_LOGIN, Inner, Org, OrgRole, SimInvitation, SimUser, TeamMember, TeamRole};
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use chrono::Utc;
use serde_json::{Map, Value};
use std::sync::Arc;
use std::time::Instant;

type Ext = Option<axum::Extension<Caller>>;

/// 404 unless `org` names the simulator's organisation (case-insensitively).
pub(super) fn check_org(inner: &Inner, org: &str, docs: &str) -> Result<(), Response> {
    if org.eq_ignore_ascii_case(&inner.org) {
        Ok(())
    } else {
        Err(not_found(docs))
    }
}

/// Who invitations made by this caller name as their inviter.
pub(super) fn inviter(caller: &Ext) -> String {
    match caller.as_ref().map(|c| &c.0) {
        Some(Caller::User { login, .. }) => login.clone(),
        _ => ADMIN_LOGIN.to_string(),
    }
}

/// Who is invited, with what, by whom.
pub(super) struct Invite<'a> {
    pub login: Option<&'a str>,
    pub email: Option<&'a str>,
    pub role: OrgRole,
    pub teams: &'a [(u64, TeamRole)],
    pub inviter: &'a str,
    /// Counted as a create of the login (or e-mail): sent through the API, not seeded.
    pub counted: bool,
}

/// Invite a user (by login) or an e-mail; with the team memberships the invitation holds
/// (pending until accepted).
pub(super) fn invite(s: &mut Org, i: Invite<'_>) -> u64 {
    let Invite {
        login,
        email,
        role,
        teams,
        inviter,
        counted,
    } = i;
    let id = s.next_id();
    let login = login.and_then(|l| s.user(l)).map(|u| u.login.clone());
    if counted {
        s.counts.created(login.as_deref().or(email).unwrap_or(""));
    }
    if let Some(l) = &login {
        for (team, role) in teams {
            s.team_members.insert(
                (*team, l.to_lowercase()),
                TeamMember {
                    role: *role,
                    pending: true,
                    visible_at: Instant::now(),
                },
            );
        }
    }
    s.invitations.insert(
        id,
        SimInvitation {
            id,
            login,
            email: email.map(str::to_string),
            role,
            team_ids: teams.iter().map(|(t, _)| *t).collect(),
            inviter: inviter.to_string(),
            created: Utc::now(),
            failed_at: None,
            failed_reason: None,
        },
    );
    id
}

/// 404 for another organisation, else the body as a JSON object (400 when it is not).
pub(super) fn org_body(
    inner: &Inner,
    org: &str,
    body: &Bytes,
    docs: &str,
) -> Result<Map<String, Value>, Response> {
    check_org(inner, org, docs)?;
    shapes::parse_body(body, docs)
}

/// Enumerated query parameters (`name`, allowed values, the first the default); 422 for
/// another value, as GitHub validates them.
pub(super) fn query_enums<'a, const N: usize>(
    q: &'a Query,
    params: [(&str, &[&'static str]); N],
    docs: &str,
) -> Result<[&'a str; N], Response> {
    let mut out = [""; N];
    for (slot, (name, allowed)) in out.iter_mut().zip(params) {
        let v = q.or(name, allowed.first().copied().unwrap_or(""));
        if !allowed.contains(&v) {
            let detail = format!("For '{name}', \"{v}\" is not one of {allowed:?}.");
            return Err(invalid_request(&detail, docs));
        }
        *slot = v;
    }
    Ok(out)
}

/// 404 for another organisation, else the listing's enumerated parameters.
pub(super) fn org_query<'a, const N: usize>(
    inner: &Inner,
    org: &str,
    l: &'a Listing,
    params: [(&str, &[&'static str]); N],
    docs: &str,
) -> Result<[&'a str; N], Response> {
    check_org(inner, org, docs)?;
    query_enums(&l.q, params, docs)
}

/// The users behind these lower-cased logins that `keep` keeps, as `simple-user`s.
pub(super) fn users_json<'a>(
    s: &Org,
    base: &str,
    logins: impl Iterator<Item = &'a String>,
    keep: impl Fn(&SimUser) -> bool,
) -> Vec<Value> {
    logins
        .filter_map(|login| s.users.get(login))
        .filter(|u| keep(u))
        .map(|u| shapes::simple_user(u, base))
        .collect()
}

pub(super) async fn list_members(
    State(inner): State<Arc<Inner>>,
    Path(org): Path<String>,
    l: Listing,
) -> Response {
    let roles = ["all", "admin", "member"];
    let filters = ["all", "2fa_disabled", "2fa_insecure"];
    let params = [("role", &roles[..]), ("filter", &filters[..])];
    let [role, filter] = match org_query(&inner, &org, &l, params, DOCS_MEMBERS) {
        Ok(v) => v,
        Err(r) => return r,
    };
    let now = Instant::now();
    let s = inner.lock();
    let logins = s
        .members
        .iter()
        .filter(|(_, m)| m.visible_at <= now && m.role != OrgRole::BillingManager)
        .filter(|(_, m)| role == "all" || m.role.as_str() == role)
        .map(|(login, _)| login);
    let items = users_json(&s, &l.base, logins, |u| match filter {
        "2fa_disabled" => !u.two_factor,
        "2fa_insecure" => false,
        _ => true,
    });
    drop(s);
    l.respond(items)
}

/// `GET /orgs/{org}/members/{username}`: 204 for a member, 404 otherwise (the truth, not
/// the eventually consistent listing).
pub(super) async fn check_member(
    State(inner): State<Arc<Inner>>,
    Path((org, username)): Path<(String, String)>,
) -> Response {
    if let Err(r) = check_org(&inner, &org, DOCS_MEMBERS) {
        return r;
    }
    let member = inner
        .lock()
        .members
        .get(&username.to_lowercase())
        .is_some_and(|m| m.role != OrgRole::BillingManager);
    if member {
        empty(StatusCode::NO_CONTENT)
    } else {
        empty(StatusCode::NOT_FOUND)
    }
}

/// `DELETE /orgs/{org}/members/{username}`: 204, whether or not they were a member; their
/// team memberships go too.
pub(super) async fn remove_member(
    State(inner): State<Arc<Inner>>,
    Path((org, username)): Path<(String, String)>,
) -> Response {
    if let Err(r) = check_org(&inner, &org, DOCS_MEMBERS) {
        return r;
    }
    inner.lock().remove_member(&username);
    empty(StatusCode::NO_CONTENT)
}

pub(super) async fn get_membership(
    State(inner): State<Arc<Inner>>,
    Path((org, username)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    if let Err(r) = check_org(&inner, &org, DOCS_MEMBERS) {
        return r;
    }
    let s = inner.lock();
    let Some(user) = s.user(&username) else {
        return not_found(DOCS_MEMBERS);
    };
    let state = match s.members.get(&username.to_lowercase()) {
        Some(m) => Some((m.role, false)),
        None => s
            .invitation_for(Some(&user.login), None)
            .and_then(|id| s.invitations.get(&id))
            .map(|i| (i.role, true)),
    };
    match state {
        Some((role, pending)) => json_response(
            StatusCode::OK,
            shapes::org_membership(&inner, &shapes::base(&headers), user, role, pending),
        ),
        None => not_found(DOCS_MEMBERS),
    }
}

/// `PUT /orgs/{org}/memberships/{username}`: a member's role changes (`active`); anyone
/// else is invited, or their pending invitation takes the new role (`pending`).
pub(super) async fn set_membership(
    State(inner): State<Arc<Inner>>,
    Path((org, username)): Path<(String, String)>,
    headers: HeaderMap,
    caller: Ext,
    body: Bytes,
) -> Response {
    let body = match org_body(&inner, &org, &body, DOCS_MEMBERS) {
        Ok(b) => b,
        Err(r) => return r,
    };
    let role = match shapes::enum_field(&body, "role", &["admin", "member"], DOCS_MEMBERS) {
        Ok(Some("admin")) => OrgRole::Admin,
        Ok(_) => OrgRole::Member,
        Err(r) => return r,
    };
    let inviter = inviter(&caller);
    let mut s = inner.lock();
    s.user_on_demand(&username);
    let Some(user) = s.user(&username).cloned() else {
        return not_found(DOCS_MEMBERS);
    };
    let lc = user.login.to_lowercase();
    let pending = if let Some(m) = s.members.get_mut(&lc) {
        m.role = role;
        false
    } else {
        match s.invitation_for(Some(&user.login), None) {
            Some(id) => {
                if let Some(i) = s.invitations.get_mut(&id) {
                    i.role = role;
                }
            }
            None => {
                let login = Some(user.login.as_str());
                invite(
                    &mut s,
                    Invite {
                        login,
                        email: None,
                        role,
                        teams: &[],
                        inviter: &inviter,
                        counted: true,
                    },
                );
            }
        }
        true
    };
    json_response(
        StatusCode::OK,
        shapes::org_membership(&inner, &shapes::base(&headers), &user, role, pending),
    )
}

/// `DELETE /orgs/{org}/memberships/{username}`: removes a member or cancels their pending
/// invitation; 404 when there is neither.
pub(super) async fn remove_membership(
    State(inner): State<Arc<Inner>>,
    Path((org, username)): Path<(String, String)>,
) -> Response {
    if let Err(r) = check_org(&inner, &org, DOCS_MEMBERS) {
        return r;
    }
    let mut s = inner.lock();
    if s.remove_member(&username) {
        return empty(StatusCode::NO_CONTENT);
    }
    match s.invitation_for(Some(&username), None) {
        Some(id) => {
            s.cancel_invitation(id);
            empty(StatusCode::NO_CONTENT)
        }
        None => not_found(DOCS_MEMBERS),
    }
}

pub(super) fn invitation_list(
    inner: &Inner,
    base: &str,
    failed: bool,
    keep: impl Fn(&SimInvitation) -> bool,
) -> Vec<Value> {
    let s = inner.lock();
    let list = if failed { &s.failed } else { &s.invitations };
    list.values()
        .filter(|i| keep(i))
        .map(|i| {
            let inviter = s.user(&i.inviter).or_else(|| s.user(ADMIN_LOGIN));
            match inviter {
                Some(who) => shapes::invitation(inner, base, i, who),
                None => Value::Null,
            }
        })
        .collect()
}

pub(super) async fn list_invitations(
    State(inner): State<Arc<Inner>>,
    Path(org): Path<String>,
    l: Listing,
) -> Response {
    let roles = [
        "all",
        "admin",
        "direct_member",
        "billing_manager",
        "hiring_manager",
    ];
    let sources = ["all", "member", "scim"];
    let params = [("role", &roles[..]), ("invitation_source", &sources[..])];
    let [role, source] = match org_query(&inner, &org, &l, params, DOCS_MEMBERS) {
        Ok(v) => v,
        Err(r) => return r,
    };
    let items = invitation_list(&inner, &l.base, false, |i| {
        (role == "all" || i.role.invitation_role() == role) && source != "scim"
    });
    l.respond(items)
}

pub(super) async fn failed_invitations(
    State(inner): State<Arc<Inner>>,
    Path(org): Path<String>,
    l: Listing,
) -> Response {
    match org_query(&inner, &org, &l, [], DOCS_MEMBERS) {
        Ok([]) => l.respond(invitation_list(&inner, &l.base, true, |_| true)),
        Err(r) => r,
    }
}

const INVITATION: &str = "OrganizationInvitation";

/// `POST /orgs/{org}/invitations` by `invitee_id` or `email`: 201; 404 for an unknown
/// invitee id; 422 for a member, someone already invited, or an unknown team.
pub(super) async fn create_invitation(
    State(inner): State<Arc<Inner>>,
    Path(org): Path<String>,
    headers: HeaderMap,
    caller: Ext,
    body: Bytes,
) -> Response {
    let body = match org_body(&inner, &org, &body, DOCS_MEMBERS) {
        Ok(b) => b,
        Err(r) => return r,
    };
    let roles = ["admin", "direct_member", "billing_manager", "reinstate"];
    let role = match shapes::enum_field(&body, "role", &roles, DOCS_MEMBERS) {
        Ok(r) => {
            OrgRole::from_invitation_role(r.unwrap_or("direct_member")).unwrap_or(OrgRole::Member)
        }
        Err(r) => return r,
    };
    let invitee_id = match body.get("invitee_id") {
        None | Some(Value::Null) => None,
        Some(v) => match v.as_u64() {
            Some(id) => Some(id),
            None => {
                return invalid_request(
                    &format!("For 'properties/invitee_id', {v} is not an integer."),
                    DOCS_MEMBERS,
                );
            }
        },
    };
    let email = match body.get("email") {
        None | Some(Value::Null) => None,
        Some(Value::String(e)) if e.contains('@') => Some(e.trim().to_string()),
        Some(_) => {
            return validation_failed(
                INVITATION,
                "invalid",
                "email",
                "Email is invalid",
                DOCS_MEMBERS,
            );
        }
    };
    let team_ids: Vec<u64> = match body.get("team_ids") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(ids)) if ids.iter().all(|i| i.as_u64().is_some()) => {
            ids.iter().filter_map(Value::as_u64).collect()
        }
        Some(v) => {
            return invalid_request(
                &format!("For 'properties/team_ids', {v} is not an array of integers."),
                DOCS_MEMBERS,
            );
        }
    };
    let inviter = inviter(&caller);
    let mut s = inner.lock();
    let login = match (invitee_id, &email) {
        (Some(id), _) => match s.user_by_id(id) {
            Some(u) => Some(u.login.clone()),
            None => return not_found(DOCS_MEMBERS),
        },
        (None, Some(_)) => None,
        (None, None) => {
            return validation_failed(
                INVITATION,
                "missing_field",
                "invitee_id",
                "Either invitee_id or email must be provided",
                DOCS_MEMBERS,
            );
        }
    };
    let member_by_email = email.as_deref().is_some_and(|e| {
        s.members.keys().filter_map(|l| s.users.get(l)).any(|u| {
            u.email
                .as_deref()
                .is_some_and(|x| x.eq_ignore_ascii_case(e))
        })
    });
    let member = login
        .as_deref()
        .is_some_and(|l| s.members.contains_key(&l.to_lowercase()));
    if member || member_by_email {
        return validation_failed(
            INVITATION,
            "unprocessable",
            "data",
            "Invitee is already a part of this organization",
            DOCS_MEMBERS,
        );
    }
    if s.invitation_for(login.as_deref(), email.as_deref())
        .is_some()
    {
        let field = if login.is_some() {
            "invitee_id"
        } else {
            "email"
        };
        return validation_failed(
            INVITATION,
            "already_exists",
            field,
            "Invitee has already been invited",
            DOCS_MEMBERS,
        );
    }
    if let Some(t) = team_ids.iter().find(|t| !s.teams.contains_key(t)) {
        return validation_failed(
            INVITATION,
            "invalid",
            "team_ids",
            &format!("Team {t} does not exist in this organization"),
            DOCS_MEMBERS,
        );
    }
    let teams: Vec<(u64, TeamRole)> = team_ids.iter().map(|t| (*t, TeamRole::Member)).collect();
    let id = invite(
        &mut s,
        Invite {
            login: login.as_deref(),
            email: email.as_deref(),
            role,
            teams: &teams,
            inviter: &inviter,
            counted: true,
        },
    );
    let base = shapes::base(&headers);
    let (Some(inv), Some(who)) = (
        s.invitations.get(&id),
        s.user(&inviter).or_else(|| s.user(ADMIN_LOGIN)),
    ) else {
        return not_found(DOCS_MEMBERS);
    };
    json_response(
        StatusCode::CREATED,
        shapes::invitation(&inner, &base, inv, who),
    )
}

/// `DELETE /orgs/{org}/invitations/{invitation_id}`: 204, or 404 for no pending invitation.
pub(super) async fn cancel_invitation(
    State(inner): State<Arc<Inner>>,
    Path((org, id)): Path<(String, String)>,
) -> Response {
    if let Err(r) = check_org(&inner, &org, DOCS_MEMBERS) {
        return r;
    }
    let cancelled = id
        .parse::<u64>()
        .is_ok_and(|id| inner.lock().cancel_invitation(id));
    if cancelled {
        empty(StatusCode::NO_CONTENT)
    } else {
        not_found(DOCS_MEMBERS)
    }
}

/// `GET /users/{username}`: the public profile.
pub(super) async fn get_user(
    State(inner): State<Arc<Inner>>,
    Path(username): Path<String>,
    headers: HeaderMap,
) -> Response {
    let docs = "https://docs.github.com/rest/users/users#get-a-user";
    match inner.lock().user(&username) {
        Some(u) => json_response(
            StatusCode::OK,
            shapes::full_user(u, &shapes::base(&headers), false),
        ),
        None => not_found(docs),
    }
}

/// `GET /user`: the token's own user, in the private view.
pub(super) async fn authenticated_user(
    State(inner): State<Arc<Inner>>,
    headers: HeaderMap,
    caller: Ext,
) -> Response {
    let login = match caller.map(|c| c.0) {
        Some(Caller::User { login, .. }) => login,
        _ => {
            return shapes::error(
                StatusCode::FORBIDDEN,
                "Resource not accessible by integration",
                DOCS,
            );
        }
    };
    match inner.lock().user(&login) {
        Some(u) => json_response(
            StatusCode::OK,
            shapes::full_user(u, &shapes::base(&headers), true),
        ),
        None => not_found(DOCS),
    }
}
