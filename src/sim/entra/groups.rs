//! `GET /groups`, `GET /groups/{id}`, `GET /groups/{id}/members`, `members/$ref` add and
//! remove, and `GET /users/{id}/memberOf`: the `microsoft.graph.group` resource and the
//! directory objects of a membership as Graph returns them.

use super::paging::{Query, collection, project};
use super::users::{self, SimUser};
use super::{
    Directory, GRAPH_ROOT, Inner, bad_request, json_response, no_content, not_found, parse_object,
    ts,
};
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Instant;

#[derive(Debug, Clone, PartialEq)]
pub struct SimGroup {
    /// A GUID.
    pub id: String,
    pub display_name: String,
    pub mail_nickname: String,
    pub description: Option<String>,
    /// A mail-enabled group's address (None: a security group).
    pub mail: Option<String>,
    pub created: DateTime<Utc>,
}

const ALREADY_MEMBER: &str = "One or more added object references already exist for the following modified properties: 'members'.";
const SELECTABLE: &[&str] = &[
    "id",
    "displayName",
    "description",
    "mail",
    "mailEnabled",
    "mailNickname",
    "securityEnabled",
    "groupTypes",
    "createdDateTime",
    "renewedDateTime",
    "visibility",
    "proxyAddresses",
    "deletedDateTime",
    "classification",
    "expirationDateTime",
    "onPremisesSyncEnabled",
    "resourceBehaviorOptions",
    "resourceProvisioningOptions",
    "securityIdentifier",
];

pub(super) fn new_group(
    inner: &Inner,
    d: &mut Directory,
    name: &str,
    nickname: &str,
    mail: Option<&str>,
) -> String {
    let id = inner.new_id(d);
    d.groups.insert(
        id.clone(),
        SimGroup {
            id: id.clone(),
            display_name: name.to_string(),
            mail_nickname: nickname.to_string(),
            description: None,
            mail: mail.map(str::to_string),
            created: Utc::now(),
        },
    );
    id
}

/// The group a key names: its id, or its display name (for the handle).
pub(super) fn find(d: &Directory, key: &str) -> Option<String> {
    if d.groups.contains_key(key) {
        return Some(key.to_string());
    }
    d.groups
        .values()
        .find(|g| g.display_name.eq_ignore_ascii_case(key))
        .map(|g| g.id.clone())
}

/// A group as Graph's default projection carries it.
pub(super) fn group_json(g: &SimGroup) -> Value {
    let hex = g.id.replace('-', "");
    let sid = format!(
        "S-1-12-1-{}",
        u64::from_str_radix(hex.get(..8).unwrap_or("0"), 16).unwrap_or(0)
    );
    json!({
        "id": g.id,
        "deletedDateTime": null,
        "classification": null,
        "createdDateTime": ts(g.created),
        "description": g.description,
        "displayName": g.display_name,
        "expirationDateTime": null,
        "groupTypes": [],
        "mail": g.mail,
        "mailEnabled": g.mail.is_some(),
        "mailNickname": g.mail_nickname,
        "onPremisesSyncEnabled": null,
        "proxyAddresses": g.mail.iter().map(|m| format!("SMTP:{m}")).collect::<Vec<_>>(),
        "renewedDateTime": ts(g.created),
        "resourceBehaviorOptions": [],
        "resourceProvisioningOptions": [],
        "securityEnabled": true,
        "securityIdentifier": sid,
        "visibility": null,
    })
}

/// An object of a directory-object collection, with its `@odata.type`.
fn typed(kind: &str, v: Value) -> Value {
    let mut v = v;
    if let Value::Object(m) = &mut v {
        m.insert(
            "@odata.type".into(),
            json!(format!("#microsoft.graph.{kind}")),
        );
    }
    v
}

const DIRECTORY_OBJECTS: &str = "$metadata#directoryObjects";

pub(super) async fn list(State(inner): State<Arc<Inner>>, q: Query) -> Result<Response, Response> {
    let limit = q.top()?;
    let select = q.select(SELECTABLE, "microsoft.graph.group")?;
    let terms = q.filter(&["displayName", "mailNickname"])?;
    let d = inner.lock();
    let items: Vec<(String, Value)> = d
        .groups
        .values()
        .map(group_json)
        .filter(|g| terms.iter().all(|t| t.matches(&g[t.field.as_str()])))
        .map(|g| {
            (
                g["id"].as_str().unwrap_or("").to_string(),
                project(g, select.as_deref()),
            )
        })
        .collect();
    let (groups, next) = q.page(&inner, "groups", items, limit)?;
    let context = match &select {
        Some(s) => format!("{GRAPH_ROOT}/$metadata#groups({})", s.join(",")),
        None => format!("{GRAPH_ROOT}/$metadata#groups"),
    };
    Ok(collection(&context, groups, next))
}

pub(super) async fn get_one(
    State(inner): State<Arc<Inner>>,
    Path(id): Path<String>,
    q: Query,
) -> Result<Response, Response> {
    let select = q.select(SELECTABLE, "microsoft.graph.group")?;
    let d = inner.lock();
    let g = d.groups.get(&id).ok_or_else(|| not_found(&id))?;
    let mut v = project(group_json(g), select.as_deref());
    v["@odata.context"] = json!(format!("{GRAPH_ROOT}/$metadata#groups/$entity"));
    Ok(json_response(StatusCode::OK, v))
}

/// The visible members of a group, in user id order.
fn visible_members<'a>(
    d: &'a Directory,
    gid: &str,
    now: Instant,
) -> impl Iterator<Item = &'a SimUser> {
    d.members
        .range((gid.to_string(), String::new())..)
        .take_while(move |((g, _), _)| g == gid)
        .filter(move |(_, at)| **at <= now)
        .filter_map(|((_, uid), _)| d.users.get(uid))
        .filter(move |u| u.visible_at <= now)
}

pub(super) async fn members(
    State(inner): State<Arc<Inner>>,
    Path(id): Path<String>,
    q: Query,
) -> Result<Response, Response> {
    let limit = q.top()?;
    let select = q.select(&users::selectable(), "microsoft.graph.user")?;
    let d = inner.lock();
    if !d.groups.contains_key(&id) {
        return Err(not_found(&id));
    }
    let items: Vec<(String, Value)> = visible_members(&d, &id, Instant::now())
        .map(|u| {
            (
                u.id.clone(),
                typed("user", users::user_view(u, select.as_deref())),
            )
        })
        .collect();
    let (members, next) = q.page(&inner, &format!("members:{id}"), items, limit)?;
    Ok(collection(
        &format!("{GRAPH_ROOT}/{DIRECTORY_OBJECTS}"),
        members,
        next,
    ))
}

pub(super) async fn member_of(
    State(inner): State<Arc<Inner>>,
    Path(key): Path<String>,
    q: Query,
) -> Result<Response, Response> {
    let limit = q.top()?;
    let now = Instant::now();
    let d = inner.lock();
    let uid = users::find_visible(&d, &key)?;
    let items: Vec<(String, Value)> = d
        .members
        .iter()
        .filter(|((_, u), at)| *u == uid && **at <= now)
        .filter_map(|((gid, _), _)| d.groups.get(gid))
        .map(|g| (g.id.clone(), typed("group", group_json(g))))
        .collect();
    let (groups, next) = q.page(&inner, &format!("memberOf:{uid}"), items, limit)?;
    Ok(collection(
        &format!("{GRAPH_ROOT}/{DIRECTORY_OBJECTS}"),
        groups,
        next,
    ))
}

/// The object id an `@odata.id` names: `…/directoryObjects/{id}` or `…/users/{id}`.
pub(super) fn reference_id(body: &serde_json::Map<String, Value>) -> Result<String, Response> {
    let Some(reference) = body.get("@odata.id").and_then(Value::as_str) else {
        return Err(bad_request(
            "Invalid request body: the '@odata.id' of the reference is missing.",
        ));
    };
    let id = ["/directoryObjects/", "/users/"]
        .iter()
        .find_map(|p| {
            reference
                .rsplit_once(p)
                .map(|(_, id)| id.trim_end_matches('/'))
        })
        .filter(|id| !id.is_empty() && !id.contains('/'));
    id.map(str::to_string)
        .ok_or_else(|| bad_request(&format!("Invalid object identifier '{reference}'.")))
}

/// `POST /groups/{id}/members/$ref`.
pub(super) async fn add_member(
    State(inner): State<Arc<Inner>>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, Response> {
    let body = parse_object(&body)?;
    let member = reference_id(&body)?;
    let visible_at = inner.visible_at();
    let mut d = inner.lock();
    if !d.groups.contains_key(&id) {
        return Err(not_found(&id));
    }
    // The reference is resolved through the directory's reads: a user created a moment
    // ago may not be found yet.
    let uid = users::find_visible(&d, &member)?;
    let key = (id.clone(), uid.clone());
    if d.members.contains_key(&key) {
        return Err(bad_request(ALREADY_MEMBER));
    }
    d.members.insert(key, visible_at);
    d.counts.added(&id, &uid);
    Ok(no_content())
}

/// `DELETE /groups/{id}/members/{member}/$ref`.
pub(super) async fn remove_member(
    State(inner): State<Arc<Inner>>,
    Path((id, member)): Path<(String, String)>,
) -> Result<Response, Response> {
    let mut d = inner.lock();
    if !d.groups.contains_key(&id) {
        return Err(not_found(&id));
    }
    let uid = users::find(&d, &member).ok_or_else(|| not_found(&member))?;
    match d.members.remove(&(id, uid)) {
        Some(_) => Ok(no_content()),
        None => Err(not_found(&member)),
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::read;
    use super::*;

    #[test]
    fn references_name_a_directory_object() {
        let r = |v: Value| reference_id(v.as_object().expect("object"));
        let ok = r(json!({"@odata.id": "https://graph.microsoft.com/v1.0/directoryObjects/abc"}));
        assert_eq!(ok.ok().as_deref(), Some("abc"));
        let ok = r(json!({"@odata.id": "https://graph.microsoft.com/v1.0/users/u-1/"}));
        assert_eq!(ok.ok().as_deref(), Some("u-1"));
        for bad in [
            json!({}),
            json!({"@odata.id": 7}),
            json!({"@odata.id": "https://x/groups/g"}),
            json!({"@odata.id": "https://x/directoryObjects/"}),
        ] {
            let (st, v) = read(r(bad.clone()).expect_err("refused"));
            assert_eq!(
                (st, v["error"]["code"].as_str()),
                (400, Some("Request_BadRequest")),
                "{bad}"
            );
        }
    }

    #[test]
    fn groups_look_like_graph_s() {
        let (inner, _) = super::super::handle::tests::inner();
        let mut d = Directory::default();
        let id = new_group(
            &inner,
            &mut d,
            "Engineering",
            "eng",
            Some("eng@example.com"),
        );
        let other = new_group(&inner, &mut d, "Ops", "ops", None);
        assert_eq!(find(&d, "engineering"), Some(id.clone()));
        let v = group_json(&d.groups[&id]);
        assert_eq!(
            (v["mailEnabled"].as_bool(), v["proxyAddresses"][0].as_str()),
            (Some(true), Some("SMTP:eng@example.com"))
        );
        let v = group_json(&d.groups[&other]);
        assert_eq!(
            (v["mail"].clone(), v["mailEnabled"].as_bool()),
            (Value::Null, Some(false))
        );
        assert_eq!(typed("group", v)["@odata.type"], "#microsoft.graph.group");
    }
}
