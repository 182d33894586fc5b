//! Teams and team memberships.

use super::auth::Caller;
use super::members::{
    Invite, check_org, invite, inviter, org_body, org_query, query_enums, users_json,
};
use super::paging::Listing;
use super::shapes::{self, DOCS_TEAMS, empty, json_response, not_found, validation_failed};
use super::{Inner, Org, OrgRole, SimTeam, TeamMember, TeamRole};
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use chrono::Utc;
use serde_json::Value;
use std::sync::Arc;
use std::time::Instant;

type Ext = Option<axum::Extension<Caller>>;

/// GitHub's slug of a team name: folded to ASCII and lower-cased, runs of anything but
/// letters, digits, `_` and `-` become one `-`, trimmed of `-`.
pub(super) fn slugify(name: &str) -> String {
    let mut out = String::new();
    for c in deunicode::deunicode(name)
        .chars()
        .flat_map(char::to_lowercase)
    {
        if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
            out.push(c);
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    out.trim_matches('-').to_string()
}

/// Create a team (the handle's seeding and `POST /orgs/{org}/teams`). The name must be new.
pub(super) fn new_team(
    s: &mut Org,
    name: &str,
    description: Option<&str>,
    privacy: &str,
    parent: Option<u64>,
) -> Result<u64, &'static str> {
    let slug = slugify(name);
    let taken = s
        .teams
        .values()
        .any(|t| t.name.eq_ignore_ascii_case(name) || t.slug == slug);
    if slug.is_empty() || taken {
        return Err("name");
    }
    let id = s.next_id();
    let now = Utc::now();
    s.teams.insert(
        id,
        SimTeam {
            id,
            slug,
            name: name.to_string(),
            description: description.map(str::to_string),
            privacy: privacy.to_string(),
            notification_setting: "notifications_enabled".into(),
            permission: "pull".into(),
            parent,
            created: now,
            updated: now,
        },
    );
    Ok(id)
}

fn team_json(inner: &Inner, s: &Org, base: &str, t: &SimTeam, full: bool) -> Value {
    let parent = t.parent.and_then(|p| s.teams.get(&p));
    let members = full.then(|| {
        s.team_members
            .iter()
            .filter(|((id, _), m)| *id == t.id && !m.pending)
            .count()
    });
    shapes::team(inner, base, t, parent, members)
}

/// The team `slug` of the organisation `org`, or 404.
fn find_team(inner: &Inner, s: &Org, org: &str, slug: &str) -> Result<SimTeam, Response> {
    check_org(inner, org, DOCS_TEAMS)?;
    s.team_by_slug(slug)
        .cloned()
        .ok_or_else(|| not_found(DOCS_TEAMS))
}

pub(super) async fn list_teams(
    State(inner): State<Arc<Inner>>,
    Path(org): Path<String>,
    l: Listing,
) -> Response {
    let kinds = ["all", "enterprise", "organization"];
    let params = [("team_type", &kinds[..])];
    let [kind] = match org_query(&inner, &org, &l, params, DOCS_TEAMS) {
        Ok(k) => k,
        Err(r) => return r,
    };
    let s = inner.lock();
    let items: Vec<Value> = s
        .teams
        .values()
        .filter(|_| kind != "enterprise")
        .map(|t| team_json(&inner, &s, &l.base, t, false))
        .collect();
    drop(s);
    l.respond(items)
}

pub(super) async fn get_team(
    State(inner): State<Arc<Inner>>,
    Path((org, slug)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let s = inner.lock();
    match find_team(&inner, &s, &org, &slug) {
        Ok(t) => json_response(
            StatusCode::OK,
            team_json(&inner, &s, &shapes::base(&headers), &t, true),
        ),
        Err(r) => r,
    }
}

/// `POST /orgs/{org}/teams`: 201 `team-full`; 422 `already_exists` for a taken name. A
/// user who creates a team becomes its maintainer, as at GitHub; `maintainers` (members
/// only) too.
pub(super) async fn create_team(
    State(inner): State<Arc<Inner>>,
    Path(org): Path<String>,
    headers: HeaderMap,
    caller: Ext,
    body: Bytes,
) -> Response {
    let body = match org_body(&inner, &org, &body, DOCS_TEAMS) {
        Ok(b) => b,
        Err(r) => return r,
    };
    let Some(name) = body.get("name").and_then(Value::as_str).map(str::trim) else {
        return validation_failed("Team", "missing_field", "name", "", DOCS_TEAMS);
    };
    let privacy = match shapes::enum_field(&body, "privacy", &["secret", "closed"], DOCS_TEAMS) {
        Ok(p) => p.unwrap_or("secret").to_string(),
        Err(r) => return r,
    };
    let description = body.get("description").and_then(Value::as_str);
    let maintainers: Vec<String> = body
        .get("maintainers")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_lowercase)
                .collect()
        })
        .unwrap_or_default();
    let parent = body.get("parent_team_id").and_then(Value::as_u64);
    let mut s = inner.lock();
    if parent.is_some_and(|p| !s.teams.contains_key(&p)) {
        return validation_failed(
            "Team",
            "invalid",
            "parent_team_id",
            "Parent team could not be found",
            DOCS_TEAMS,
        );
    }
    if let Some(m) = maintainers.iter().find(|m| !s.members.contains_key(*m)) {
        return validation_failed(
            "Team",
            "invalid",
            "maintainers",
            &format!("{m} is not a member of the organization"),
            DOCS_TEAMS,
        );
    }
    let id = match new_team(&mut s, name, description, &privacy, parent) {
        Ok(id) => id,
        Err(field) => return validation_failed("Team", "already_exists", field, "", DOCS_TEAMS),
    };
    let mut maintainers = maintainers;
    if let Some(Caller::User { login, .. }) = caller.map(|c| c.0) {
        maintainers.push(login.to_lowercase());
    }
    let visible_at = inner.visible_at();
    for m in maintainers {
        s.counts.added(&slugify(name), &m);
        s.team_members.insert(
            (id, m),
            TeamMember {
                role: TeamRole::Maintainer,
                pending: false,
                visible_at,
            },
        );
    }
    let base = shapes::base(&headers);
    match s.teams.get(&id).cloned() {
        Some(t) => json_response(StatusCode::CREATED, team_json(&inner, &s, &base, &t, true)),
        None => not_found(DOCS_TEAMS),
    }
}

pub(super) async fn list_team_members(
    State(inner): State<Arc<Inner>>,
    Path((org, slug)): Path<(String, String)>,
    l: Listing,
) -> Response {
    let roles = ["all", "member", "maintainer"];
    let [role] = match query_enums(&l.q, [("role", &roles[..])], DOCS_TEAMS) {
        Ok(r) => r,
        Err(r) => return r,
    };
    let now = Instant::now();
    let s = inner.lock();
    let team = match find_team(&inner, &s, &org, &slug) {
        Ok(t) => t,
        Err(r) => return r,
    };
    let logins = s
        .team_members
        .iter()
        .filter(|((id, _), m)| *id == team.id && !m.pending && m.visible_at <= now)
        .filter(|(_, m)| role == "all" || m.role.as_str() == role)
        .map(|((_, login), _)| login);
    let items = users_json(&s, &l.base, logins, |_| true);
    drop(s);
    l.respond(items)
}

/// `GET /orgs/{org}/teams/{team_slug}/invitations`: the pending organisation
/// invitations that carry this team (someone added to the team before accepting).
pub(super) async fn list_team_invitations(
    State(inner): State<Arc<Inner>>,
    Path((org, slug)): Path<(String, String)>,
    l: Listing,
) -> Response {
    let team = {
        let s = inner.lock();
        match find_team(&inner, &s, &org, &slug) {
            Ok(t) => t,
            Err(r) => return r,
        }
    };
    let items =
        super::members::invitation_list(&inner, &l.base, false, |i| i.team_ids.contains(&team.id));
    l.respond(items)
}

pub(super) async fn get_team_membership(
    State(inner): State<Arc<Inner>>,
    Path((org, slug, username)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> Response {
    let s = inner.lock();
    let team = match find_team(&inner, &s, &org, &slug) {
        Ok(t) => t,
        Err(r) => return r,
    };
    let login = s.user(&username).map(|u| u.login.clone());
    match login.and_then(|l| {
        s.team_members
            .get(&(team.id, l.to_lowercase()))
            .map(|m| (l, m))
    }) {
        Some((login, m)) => {
            let base = shapes::base(&headers);
            shapes::team_membership(&inner, &base, team.id, &login, m.role, m.pending)
        }
        None => not_found(DOCS_TEAMS),
    }
}

/// `PUT …/teams/{slug}/memberships/{username}`: an org member joins (or changes role,
/// `active`); anyone else is invited to the organisation with this team (`pending`).
pub(super) async fn set_team_membership(
    State(inner): State<Arc<Inner>>,
    Path((org, slug, username)): Path<(String, String, String)>,
    headers: HeaderMap,
    caller: Ext,
    body: Bytes,
) -> Response {
    let body = match shapes::parse_body(&body, DOCS_TEAMS) {
        Ok(b) => b,
        Err(r) => return r,
    };
    let role = match shapes::enum_field(&body, "role", &["member", "maintainer"], DOCS_TEAMS) {
        Ok(r) => r.and_then(TeamRole::parse).unwrap_or(TeamRole::Member),
        Err(r) => return r,
    };
    let inviter = inviter(&caller);
    let visible_at = inner.visible_at();
    let mut s = inner.lock();
    let team = match find_team(&inner, &s, &org, &slug) {
        Ok(t) => t,
        Err(r) => return r,
    };
    let Some(login) = s.user(&username).map(|u| u.login.clone()) else {
        return not_found(DOCS_TEAMS);
    };
    let key = (team.id, login.to_lowercase());
    let member = s
        .members
        .get(&key.1)
        .is_some_and(|m| m.role != OrgRole::BillingManager);
    let pending = match s.team_members.get_mut(&key) {
        Some(m) => {
            m.role = role;
            m.pending
        }
        None => {
            if !member {
                let id = match s.invitation_for(Some(&login), None) {
                    Some(id) => id,
                    None => {
                        let i = Invite {
                            login: Some(&login),
                            email: None,
                            role: OrgRole::Member,
                            teams: &[],
                            inviter: &inviter,
                            counted: true,
                        };
                        invite(&mut s, i)
                    }
                };
                if let Some(i) = s.invitations.get_mut(&id) {
                    i.team_ids.push(team.id);
                }
            }
            let m = TeamMember {
                role,
                pending: !member,
                visible_at,
            };
            s.team_members.insert(key.clone(), m);
            s.counts.added(&team.slug, &key.1);
            !member
        }
    };
    let base = shapes::base(&headers);
    shapes::team_membership(&inner, &base, team.id, &login, role, pending)
}

/// `DELETE …/teams/{slug}/memberships/{username}`: 204, whether or not they were in it
/// (a pending membership leaves the invitation's teams too).
pub(super) async fn remove_team_membership(
    State(inner): State<Arc<Inner>>,
    Path((org, slug, username)): Path<(String, String, String)>,
) -> Response {
    let mut s = inner.lock();
    let team = match find_team(&inner, &s, &org, &slug) {
        Ok(t) => t,
        Err(r) => return r,
    };
    let lc = username.to_lowercase();
    s.team_members.remove(&(team.id, lc.clone()));
    if let Some(id) = s.invitation_for(Some(&lc), None)
        && let Some(i) = s.invitations.get_mut(&id)
    {
        i.team_ids.retain(|t| *t != team.id);
    }
    empty(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_are_githubs() {
        assert_eq!(slugify("Justice League"), "justice-league");
        assert_eq!(slugify("  Platform / SRE!! "), "platform-sre");
        assert_eq!(slugify("data_eng-2"), "data_eng-2");
        assert_eq!(slugify("Ünïcode Team"), "unicode-team");
    }
}
