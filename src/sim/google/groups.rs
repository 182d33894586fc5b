//! `groups.list`, `get`, `insert` and `members.list`, `get`, `insert`, `delete`,
//! `hasMember`: the Group and Member resources as Google returns them.

use super::paging::{listing, listing_domain, max_results, page_for};
use super::users::{self, SimUser};
use super::{
    Directory, Inner, duplicate, empty, error, forbidden, invalid, json_response, not_found,
    parse_object, query_map, with_etag,
};
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Instant;

#[derive(Debug, Clone, PartialEq)]
pub struct SimGroup {
    /// 15 characters, as Google's (`0` and base 36).
    pub id: String,
    pub email: String,
    pub name: String,
    pub description: String,
}

/// A user's membership of a group, as the simulator holds it.
#[derive(Debug, Clone)]
pub(super) struct Membership {
    pub role: String,
    pub visible_at: Instant,
}

/// A member as a test sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct SimMember {
    pub user_id: String,
    pub email: String,
    /// OWNER, MANAGER or MEMBER.
    pub role: String,
}

const ROLES: &[&str] = &["OWNER", "MANAGER", "MEMBER"];

/// A 15-character id unique per `n`: `0` and 14 base-36 digits of `n` scrambled by a
/// multiplier coprime with 36.
pub(super) fn group_id(n: u64) -> String {
    let modulus = 36u128.pow(14);
    let mut x = (n as u128 * 4_106_539_919_357u128) % modulus;
    let mut digits = [b'0'; 14];
    for d in digits.iter_mut().rev() {
        *d = b"0123456789abcdefghijklmnopqrstuvwxyz"[(x % 36) as usize];
        x /= 36;
    }
    format!("0{}", String::from_utf8_lossy(&digits))
}

pub(super) fn new_group(d: &mut Directory, email: &str, name: &str, description: &str) -> String {
    d.next_id += 1;
    let id = group_id(d.next_id);
    d.groups.insert(
        id.clone(),
        SimGroup {
            id: id.clone(),
            email: email.to_lowercase(),
            name: name.to_string(),
            description: description.to_string(),
        },
    );
    id
}

/// The group a key names: its e-mail (case-insensitively) or its id.
pub(super) fn find(d: &Directory, key: &str) -> Option<String> {
    if d.groups.contains_key(key) {
        return Some(key.to_string());
    }
    d.groups
        .values()
        .find(|g| g.email.eq_ignore_ascii_case(key))
        .map(|g| g.id.clone())
}

fn resolve(d: &Directory, key: &str) -> Result<String, Response> {
    find(d, key).ok_or_else(|| not_found("groupKey"))
}

fn group_json(d: &Directory, g: &SimGroup) -> Value {
    let count = d
        .members
        .range((g.id.clone(), String::new())..)
        .take_while(|((gid, _), _)| *gid == g.id)
        .count();
    with_etag(json!({
        "kind": "admin#directory#group",
        "id": g.id,
        "email": g.email,
        "name": g.name,
        "description": g.description,
        "directMembersCount": count.to_string(),
        "adminCreated": true,
    }))
}

pub(super) fn member_json(u: &SimUser, role: &str) -> Value {
    with_etag(json!({
        "kind": "admin#directory#member",
        "id": u.id,
        "email": u.primary_email,
        "role": role,
        "type": "USER",
        "status": if u.suspended { "SUSPENDED" } else { "ACTIVE" },
    }))
}

pub(super) async fn list(
    State(inner): State<Arc<Inner>>,
    RawQuery(raw): RawQuery,
) -> Result<Response, Response> {
    let q = query_map(raw);
    let limit = max_results(&q, 200, 200, true)?;
    let now = Instant::now();
    let d = inner.lock();
    // With `userKey`, the groups that user is a (visible) member of.
    let (member, domain) = match q.get("userKey").filter(|k| !k.is_empty()) {
        Some(key) => (
            Some(users::resolve(&inner, &d, key, true, "userKey")?),
            None,
        ),
        None => (None, listing_domain(&inner, &q)?),
    };
    let items: Vec<(String, Value)> = d
        .groups
        .values()
        .filter(|g| {
            domain
                .as_ref()
                .is_none_or(|dom| g.email.to_lowercase().ends_with(dom.as_str()))
        })
        .filter(|g| {
            member.as_ref().is_none_or(|uid| {
                d.members
                    .get(&(g.id.clone(), uid.clone()))
                    .is_some_and(|m| m.visible_at <= now)
            })
        })
        .map(|g| (g.email.to_lowercase(), group_json(&d, g)))
        .collect();
    let (groups, next) = page_for(&inner, "groups", &q, items, limit)?;
    Ok(listing("admin#directory#groups", "groups", groups, next))
}

pub(super) async fn get_one(
    State(inner): State<Arc<Inner>>,
    Path(key): Path<String>,
) -> Result<Response, Response> {
    let d = inner.lock();
    let id = resolve(&d, &key)?;
    let g = d.groups.get(&id).ok_or_else(|| not_found("groupKey"))?;
    Ok(json_response(StatusCode::OK, group_json(&d, g)))
}

fn required(field: &str) -> Response {
    error(
        StatusCode::BAD_REQUEST,
        "required",
        &format!("Missing required field: {field}"),
    )
}

pub(super) async fn insert(
    State(inner): State<Arc<Inner>>,
    body: Bytes,
) -> Result<Response, Response> {
    let body = parse_object(&body)?;
    let text = |k: &str| match body.get(k) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(v) => Err(invalid(&format!(
            "Invalid value at 'group.{k}' (TYPE_STRING), {v}"
        ))),
    };
    let email = text("email")?
        .filter(|e| !e.is_empty())
        .ok_or_else(|| required("email"))?;
    if !users::looks_like_email(&email) {
        return Err(invalid("Invalid Input: email"));
    }
    if !inner.owns(&email) {
        return Err(forbidden());
    }
    let name = text("name")?.unwrap_or_else(|| email.clone());
    let description = text("description")?.unwrap_or_default();
    let mut d = inner.lock();
    if find(&d, &email).is_some() || users::find(&d, &email).is_some() {
        return Err(duplicate("Entity already exists."));
    }
    let id = new_group(&mut d, &email, &name, &description);
    let g = d.groups.get(&id).ok_or_else(|| not_found("groupKey"))?;
    Ok(json_response(StatusCode::OK, group_json(&d, g)))
}

/// The group and the member (a user, by e-mail or id) a members request names: the
/// group must exist (404 `groupKey`), the user too (404 `memberKey`).
fn group_and_user(
    inner: &Inner,
    d: &Directory,
    group_key: &str,
    member_key: &str,
) -> Result<(String, String), Response> {
    let gid = resolve(d, group_key)?;
    let uid = users::resolve(inner, d, member_key, false, "memberKey")
        .map_err(|_| not_found("memberKey"))?;
    Ok((gid, uid))
}

pub(super) async fn list_members(
    State(inner): State<Arc<Inner>>,
    Path(group_key): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Response, Response> {
    let q = query_map(raw);
    let limit = max_results(&q, 200, 200, true)?;
    let roles: Vec<String> = q
        .get("roles")
        .map(|r| r.split(',').map(|x| x.trim().to_uppercase()).collect())
        .unwrap_or_default();
    let now = Instant::now();
    let d = inner.lock();
    let gid = resolve(&d, &group_key)?;
    let items: Vec<(String, Value)> = d
        .members
        .range((gid.clone(), String::new())..)
        .take_while(|((g, _), _)| *g == gid)
        .filter(|(_, m)| m.visible_at <= now)
        .filter(|(_, m)| roles.is_empty() || roles.contains(&m.role))
        .filter_map(|((_, uid), m)| {
            let u = d.users.get(uid)?;
            Some((uid.clone(), member_json(u, &m.role)))
        })
        .collect();
    let (members, next) = page_for(&inner, &format!("members:{gid}"), &q, items, limit)?;
    Ok(listing("admin#directory#members", "members", members, next))
}

pub(super) async fn insert_member(
    State(inner): State<Arc<Inner>>,
    Path(group_key): Path<String>,
    body: Bytes,
) -> Result<Response, Response> {
    let body = parse_object(&body)?;
    let text = |k: &str| {
        body.get(k)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
    };
    let member_key = text("email")
        .or(text("id"))
        .ok_or_else(|| required("memberKey"))?;
    let role = match body.get("role") {
        None | Some(Value::Null) => "MEMBER".to_string(),
        Some(Value::String(r)) if ROLES.contains(&r.to_uppercase().as_str()) => r.to_uppercase(),
        Some(_) => return Err(invalid("Invalid Input: role")),
    };
    let visible_at = inner.visible_at();
    let mut d = inner.lock();
    let (gid, uid) = group_and_user(&inner, &d, &group_key, member_key)?;
    let key = (gid.clone(), uid.clone());
    if d.members.contains_key(&key) {
        return Err(duplicate("Member already exists."));
    }
    d.members.insert(
        key,
        Membership {
            role: role.clone(),
            visible_at,
        },
    );
    d.counts.added(&gid, &uid);
    let u = d.users.get(&uid).ok_or_else(|| not_found("memberKey"))?;
    Ok(json_response(StatusCode::OK, member_json(u, &role)))
}

pub(super) async fn get_member(
    State(inner): State<Arc<Inner>>,
    Path((group_key, member_key)): Path<(String, String)>,
) -> Result<Response, Response> {
    let d = inner.lock();
    let (gid, uid) = group_and_user(&inner, &d, &group_key, &member_key)?;
    let m = d.members.get(&(gid, uid.clone()));
    match (m, d.users.get(&uid)) {
        (Some(m), Some(u)) => Ok(json_response(StatusCode::OK, member_json(u, &m.role))),
        _ => Err(not_found("memberKey")),
    }
}

pub(super) async fn delete_member(
    State(inner): State<Arc<Inner>>,
    Path((group_key, member_key)): Path<(String, String)>,
) -> Result<Response, Response> {
    let mut d = inner.lock();
    let (gid, uid) = group_and_user(&inner, &d, &group_key, &member_key)?;
    match d.members.remove(&(gid, uid)) {
        Some(_) => Ok(empty(StatusCode::NO_CONTENT)),
        None => Err(not_found("memberKey")),
    }
}

pub(super) async fn has_member(
    State(inner): State<Arc<Inner>>,
    Path((group_key, member_key)): Path<(String, String)>,
) -> Result<Response, Response> {
    let d = inner.lock();
    let (gid, uid) = group_and_user(&inner, &d, &group_key, &member_key)?;
    let is_member = d.members.contains_key(&(gid, uid));
    Ok(json_response(
        StatusCode::OK,
        json!({"isMember": is_member}),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_ids_look_like_google_s_and_are_unique() {
        let ids: std::collections::HashSet<String> = (1..5000).map(group_id).collect();
        assert_eq!(ids.len(), 4999);
        assert!(ids.iter().all(|i| i.len() == 15 && i.starts_with('0')));
    }

    #[test]
    fn members_count_and_show_suspension() {
        let mut d = Directory::default();
        let now = Instant::now();
        let g = new_group(&mut d, "eng@example.com", "Engineering", "");
        let other = new_group(&mut d, "ops@example.com", "Ops", "");
        let u = users::new_user(&mut d, "ada@example.com", false, now, now);
        for gid in [&g, &other] {
            let m = Membership {
                role: "MEMBER".into(),
                visible_at: now,
            };
            d.members.insert((gid.clone(), u.clone()), m);
        }
        let v = group_json(&d, &d.groups[&g]);
        assert_eq!(v["directMembersCount"], "1", "{v}");
        assert_eq!(find(&d, "ENG@example.com"), Some(g.clone()));
        if let Some(user) = d.users.get_mut(&u) {
            users::set_suspended(user, true);
        }
        let m = member_json(&d.users[&u], "OWNER");
        assert_eq!(
            (m["status"].as_str(), m["type"].as_str()),
            (Some("SUSPENDED"), Some("USER"))
        );
        assert!(users::remove_user(&mut d, &u));
        assert_eq!(group_json(&d, &d.groups[&g])["directMembersCount"], "0");
    }
}
