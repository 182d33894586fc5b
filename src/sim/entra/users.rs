//! `POST /users`, `GET|PATCH|DELETE /users/{id | userPrincipalName}`, `GET /users`: the
//! `microsoft.graph.user` resource as Graph returns it.

use super::paging::{Query, project};
use super::{
    Directory, GRAPH_ROOT, Inner, bad_request, json_response, no_content, not_found, parse_object,
    ts,
};
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode};
use axum::response::Response;
use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};
use std::sync::Arc;
use std::time::Instant;

/// A user as the simulator holds it.
#[derive(Debug, Clone)]
pub struct SimUser {
    /// A GUID.
    pub id: String,
    pub user_principal_name: String,
    pub account_enabled: bool,
    /// The other writable properties, as Graph returns them (`displayName`, `givenName`,
    /// `surname`, `mail`, `mailNickname`, `employeeId`, `department`, `jobTitle`,
    /// `companyName`, `officeLocation`, `employeeOrgData`, `businessPhones`...). Never the
    /// password.
    pub fields: Map<String, Value>,
    /// Whether a password was set (the value itself is never kept).
    pub has_password: bool,
    pub created: DateTime<Utc>,
    /// Created through `POST /users` (false: seeded, or made by hand).
    pub via_api: bool,
    pub(super) visible_at: Instant,
}

impl SimUser {
    /// A string property (`displayName`, `employeeId`...), None when unset.
    pub fn text(&self, property: &str) -> Option<&str> {
        self.fields.get(property).and_then(Value::as_str)
    }

    pub fn display_name(&self) -> &str {
        self.text("displayName").unwrap_or("")
    }

    pub fn employee_id(&self) -> Option<&str> {
        self.text("employeeId")
    }
}

/// How a writable property's value must look.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    Text,
    Bool,
    Phones,
    OrgData,
    Password,
}

const WRITABLE: &[(&str, Kind)] = &[
    ("accountEnabled", Kind::Bool),
    ("userPrincipalName", Kind::Text),
    ("displayName", Kind::Text),
    ("givenName", Kind::Text),
    ("surname", Kind::Text),
    ("mail", Kind::Text),
    ("mailNickname", Kind::Text),
    ("employeeId", Kind::Text),
    ("employeeType", Kind::Text),
    ("department", Kind::Text),
    ("jobTitle", Kind::Text),
    ("companyName", Kind::Text),
    ("officeLocation", Kind::Text),
    ("mobilePhone", Kind::Text),
    ("preferredLanguage", Kind::Text),
    ("usageLocation", Kind::Text),
    ("businessPhones", Kind::Phones),
    ("employeeOrgData", Kind::OrgData),
    ("passwordProfile", Kind::Password),
];
const READ_ONLY: &[&str] = &["id", "createdDateTime", "creationType", "userType"];
const REQUIRED: &[&str] = &[
    "accountEnabled",
    "displayName",
    "mailNickname",
    "userPrincipalName",
    "passwordProfile",
];
/// What a user carries without `$select` (Graph v1.0's default set).
const DEFAULT: &[&str] = &[
    "businessPhones",
    "displayName",
    "givenName",
    "id",
    "jobTitle",
    "mail",
    "mobilePhone",
    "officeLocation",
    "preferredLanguage",
    "surname",
    "userPrincipalName",
];
/// What `$filter` can test.
pub(super) const FILTERABLE: &[&str] = &[
    "userPrincipalName",
    "employeeId",
    "accountEnabled",
    "mail",
    "mailNickname",
    "displayName",
];
const TYPE: &str = "microsoft.graph.user";

/// Every property `$select` may name: what [`user_json`] writes.
pub(super) fn selectable() -> Vec<&'static str> {
    WRITABLE
        .iter()
        .filter(|(_, k)| *k != Kind::Password)
        .map(|(n, _)| *n)
        .chain(READ_ONLY.iter().copied())
        .collect()
}

fn invalid_value(property: &str) -> Response {
    bad_request(&format!(
        "Invalid value specified for property '{property}' of resource 'User'."
    ))
}

/// Whether `v` fits `kind` (null clears every property but `accountEnabled`).
fn fits(kind: Kind, v: &Value) -> bool {
    let text_or_null = |v: Option<&Value>| v.is_none_or(|v| v.is_null() || v.is_string());
    match (kind, v) {
        (Kind::Bool, v) => v.is_boolean(),
        (_, Value::Null) => true,
        (Kind::Text, v) => v.is_string(),
        (Kind::Phones, Value::Array(a)) => a.len() <= 1 && a.iter().all(Value::is_string),
        (Kind::OrgData, Value::Object(o)) => {
            o.keys().all(|k| k == "costCenter" || k == "division")
                && text_or_null(o.get("costCenter"))
                && text_or_null(o.get("division"))
        }
        (Kind::Password, Value::Object(o)) => {
            o.get("password")
                .is_some_and(|p| p.as_str().is_some_and(|p| !p.is_empty()))
                && o.iter().all(|(k, v)| {
                    k == "password" || (k.starts_with("forceChange") && v.is_boolean())
                })
        }
        _ => false,
    }
}

/// Check a create (`creating`) or PATCH body the way Graph does, before anything changes:
/// known, writable properties of the right types, the required ones, the UPN's domain.
pub(super) fn validate(
    inner: &Inner,
    body: &Map<String, Value>,
    creating: bool,
) -> Result<(), Response> {
    for (k, v) in body {
        if k.starts_with("@odata.") {
            continue;
        }
        if READ_ONLY.contains(&k.as_str()) {
            return Err(bad_request(&format!(
                "Property '{k}' is read-only and cannot be set."
            )));
        }
        let Some((_, kind)) = WRITABLE.iter().find(|(n, _)| n == k) else {
            return Err(bad_request(&format!(
                "Property '{k}' does not exist as a declared property or extension property."
            )));
        };
        if !fits(*kind, v) {
            return Err(invalid_value(k));
        }
    }
    if creating {
        let missing = REQUIRED.iter().find(|k| match body.get(**k) {
            None | Some(Value::Null) => true,
            Some(Value::String(s)) => s.trim().is_empty(),
            _ => false,
        });
        if let Some(k) = missing {
            return Err(bad_request(&format!(
                "A value is required for property '{k}' of resource 'User'."
            )));
        }
    }
    let text = |k: &str| body.get(k).and_then(Value::as_str);
    if text("userPrincipalName")
        .is_some_and(|upn| !inner.verified(upn) || upn.chars().any(char::is_whitespace))
    {
        return Err(bad_request(
            "The domain portion of the userPrincipalName property is invalid. You must use one of the verified domain names in your organization.",
        ));
    }
    if let Some(nick) = text("mailNickname") {
        let bad = |c: char| c.is_whitespace() || "@()\\[]\";:<>,".contains(c);
        if nick.is_empty() || nick.len() > 64 || nick.chars().any(bad) {
            return Err(invalid_value("mailNickname"));
        }
    }
    Ok(())
}

/// Apply a validated body: absent properties kept, `null` clears, complex values
/// replaced whole. The caller keeps the UPN index.
pub(super) fn apply(u: &mut SimUser, body: Map<String, Value>) {
    for (k, v) in body {
        match (k.as_str(), v) {
            (k, _) if k.starts_with("@odata.") => {}
            ("userPrincipalName", Value::String(upn)) => u.user_principal_name = upn,
            ("accountEnabled", v) => u.account_enabled = v.as_bool().unwrap_or(u.account_enabled),
            ("passwordProfile", v) => u.has_password |= !v.is_null(),
            (_, Value::Null) => {
                u.fields.remove(&k);
            }
            (_, v) => {
                u.fields.insert(k, v);
            }
        }
    }
}

/// A new user with no properties yet (the caller applies them); returns the id.
pub(super) fn new_user(
    inner: &Inner,
    d: &mut Directory,
    upn: &str,
    via_api: bool,
    visible_at: Instant,
) -> String {
    let id = inner.new_id(d);
    d.by_upn.insert(upn.to_lowercase(), id.clone());
    d.users.insert(
        id.clone(),
        SimUser {
            id: id.clone(),
            user_principal_name: upn.to_string(),
            account_enabled: true,
            fields: Map::new(),
            has_password: false,
            created: Utc::now(),
            via_api,
            visible_at,
        },
    );
    id
}

/// The user a key names: an id or a `userPrincipalName` (case-insensitively).
pub(super) fn find(d: &Directory, key: &str) -> Option<String> {
    if d.users.contains_key(key) {
        return Some(key.to_string());
    }
    d.by_upn.get(&key.to_lowercase()).cloned()
}

/// The user a key names as reads see it: unknown, or not visible yet, is 404.
pub(super) fn find_visible(d: &Directory, key: &str) -> Result<String, Response> {
    let now = Instant::now();
    find(d, key)
        .filter(|id| d.users.get(id).is_some_and(|u| u.visible_at <= now))
        .ok_or_else(|| not_found(key))
}

/// Move a user to a new UPN: free (case-insensitively) and in a verified domain.
fn rename(d: &mut Directory, id: &str, upn: &str) -> Result<(), Response> {
    let new = upn.to_lowercase();
    let old = d
        .users
        .get(id)
        .map(|u| u.user_principal_name.to_lowercase());
    if old.as_deref() == Some(new.as_str()) {
        return Ok(());
    }
    if d.by_upn.contains_key(&new) {
        return Err(upn_taken());
    }
    if let Some(old) = old {
        d.by_upn.remove(&old);
    }
    d.by_upn.insert(new, id.to_string());
    Ok(())
}

fn upn_taken() -> Response {
    const TAKEN: &str =
        "Another object with the same value for property userPrincipalName already exists.";
    super::error_with(
        StatusCode::BAD_REQUEST,
        "Request_BadRequest",
        TAKEN,
        Some(json!([{"code": "ObjectConflict", "message": TAKEN, "target": "userPrincipalName"}])),
    )
}

/// Every property the simulator holds for a user, as Graph writes them (unset ones null).
pub(super) fn user_json(u: &SimUser) -> Value {
    let mut v = Map::new();
    for (name, kind) in WRITABLE {
        let value = match (*name, kind) {
            (_, Kind::Password) => continue,
            ("userPrincipalName", _) => json!(u.user_principal_name),
            ("accountEnabled", _) => json!(u.account_enabled),
            (n, Kind::Phones) => u.fields.get(n).cloned().unwrap_or_else(|| json!([])),
            (n, _) => u.fields.get(n).cloned().unwrap_or(Value::Null),
        };
        v.insert(name.to_string(), value);
    }
    v.insert("id".into(), json!(u.id));
    v.insert("createdDateTime".into(), json!(ts(u.created)));
    // null for ordinary accounts (Graph names only invited, local and e-mail-verified ones).
    v.insert("creationType".into(), Value::Null);
    v.insert("userType".into(), json!("Member"));
    Value::Object(v)
}

/// A user as an answer carries it: the default set, or what `$select` names.
pub(super) fn user_view(u: &SimUser, select: Option<&[String]>) -> Value {
    let default: Vec<String>;
    let keep = match select {
        Some(s) => s,
        None => {
            default = DEFAULT.iter().map(|s| s.to_string()).collect();
            &default
        }
    };
    project(user_json(u), Some(keep))
}

/// `$metadata#users` or `$metadata#users(a,b)`, with `suffix`.
fn context(select: Option<&[String]>, suffix: &str) -> String {
    match select {
        Some(s) => format!("{GRAPH_ROOT}/$metadata#users({}){suffix}", s.join(",")),
        None => format!("{GRAPH_ROOT}/$metadata#users{suffix}"),
    }
}

fn entity(status: StatusCode, u: &SimUser, select: Option<&[String]>) -> Response {
    let mut v = user_view(u, select);
    v["@odata.context"] = json!(context(select, "/$entity"));
    json_response(status, v)
}

pub(super) async fn create(
    State(inner): State<Arc<Inner>>,
    body: Bytes,
) -> Result<Response, Response> {
    let body = parse_object(&body)?;
    validate(&inner, &body, true)?;
    let upn = body
        .get("userPrincipalName")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let visible_at = inner.visible_at();
    let mut d = inner.lock();
    if d.by_upn.contains_key(&upn.to_lowercase()) {
        return Err(upn_taken());
    }
    let id = new_user(&inner, &mut d, &upn, true, visible_at);
    d.counts.created(&upn);
    let u = d.users.get_mut(&id).ok_or_else(|| not_found(&id))?;
    apply(u, body);
    let mut r = entity(StatusCode::CREATED, u, None);
    let location = format!(
        "https://graph.microsoft.com/v2/{}/directoryObjects/{id}/Microsoft.DirectoryServices.User",
        inner.tenant_id
    );
    if let Ok(v) = HeaderValue::from_str(&location) {
        r.headers_mut().insert("location", v);
    }
    Ok(r)
}

pub(super) async fn get_one(
    State(inner): State<Arc<Inner>>,
    Path(key): Path<String>,
    q: Query,
) -> Result<Response, Response> {
    let select = q.select(&selectable(), TYPE)?;
    let d = inner.lock();
    let id = find_visible(&d, &key)?;
    let u = d.users.get(&id).ok_or_else(|| not_found(&key))?;
    Ok(entity(StatusCode::OK, u, select.as_deref()))
}

pub(super) async fn update(
    State(inner): State<Arc<Inner>>,
    Path(key): Path<String>,
    body: Bytes,
) -> Result<Response, Response> {
    let body = parse_object(&body)?;
    validate(&inner, &body, false)?;
    let mut d = inner.lock();
    let id = find(&d, &key).ok_or_else(|| not_found(&key))?;
    if let Some(upn) = body.get("userPrincipalName").and_then(Value::as_str) {
        rename(&mut d, &id, upn)?;
    }
    let u = d.users.get_mut(&id).ok_or_else(|| not_found(&key))?;
    apply(u, body);
    Ok(no_content())
}

pub(super) async fn delete(
    State(inner): State<Arc<Inner>>,
    Path(key): Path<String>,
) -> Result<Response, Response> {
    let mut d = inner.lock();
    let id = find(&d, &key).ok_or_else(|| not_found(&key))?;
    remove_user(&mut d, &id);
    Ok(no_content())
}

/// Delete a user with their memberships.
pub(super) fn remove_user(d: &mut Directory, id: &str) -> bool {
    let Some(u) = d.users.remove(id) else {
        return false;
    };
    d.by_upn.remove(&u.user_principal_name.to_lowercase());
    d.members.retain(|(_, member), _| member != id);
    true
}

pub(super) async fn list(State(inner): State<Arc<Inner>>, q: Query) -> Result<Response, Response> {
    let limit = q.top()?;
    let select = q.select(&selectable(), TYPE)?;
    let terms = q.filter(FILTERABLE)?;
    let now = Instant::now();
    let d = inner.lock();
    let items: Vec<(String, &SimUser)> = d
        .users
        .values()
        .filter(|u| u.visible_at <= now)
        .filter(|u| {
            let full = user_json(u);
            terms.iter().all(|t| t.matches(&full[t.field.as_str()]))
        })
        .map(|u| (u.id.clone(), u))
        .collect();
    let (users, next) = q.page(&inner, "users", items, limit)?;
    let users = users
        .into_iter()
        .map(|u| user_view(u, select.as_deref()))
        .collect();
    Ok(super::paging::collection(
        &context(select.as_deref(), ""),
        users,
        next,
    ))
}

#[cfg(test)]
mod tests {
    use super::super::tests::read;
    use super::*;

    fn body(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap_or_default()
    }

    fn refusal(inner: &Inner, v: Value, creating: bool) -> String {
        match validate(inner, &body(v), creating) {
            Ok(()) => "accepted".into(),
            Err(r) => {
                let (st, b) = read(r);
                format!(
                    "{st} {}: {}",
                    b["error"]["code"].as_str().unwrap_or(""),
                    b["error"]["message"].as_str().unwrap_or("")
                )
            }
        }
    }

    #[test]
    fn creates_are_validated_as_graph_validates_them() {
        let (inner, _) = super::super::handle::tests::inner();
        let ok = json!({"accountEnabled": true, "displayName": "Ada Lovelace", "mailNickname": "ada",
            "userPrincipalName": "ada@example.com", "passwordProfile": {"password": "xWwvJ]6NMw+bWH-d",
            "forceChangePasswordNextSignIn": true}, "employeeOrgData": {"costCenter": "C1", "division": null}});
        assert_eq!(refusal(&inner, ok.clone(), true), "accepted");
        let with = |k: &str, v: Value| {
            let mut b = ok.clone();
            b[k] = v;
            b
        };
        let bad = |p: &str| {
            format!(
                "400 Request_BadRequest: Invalid value specified for property '{p}' of resource 'User'."
            )
        };
        for (b, want) in [
            (with("displayName", json!(" ")), "400 Request_BadRequest: A value is required for property 'displayName' of resource 'User'.".to_string()),
            (with("passwordProfile", Value::Null), "400 Request_BadRequest: A value is required for property 'passwordProfile' of resource 'User'.".into()),
            (with("accountEnabled", json!("yes")), bad("accountEnabled")),
            (with("passwordProfile", json!({"password": ""})), bad("passwordProfile")),
            (with("employeeOrgData", json!({"costCenter": 7})), bad("employeeOrgData")),
            (with("businessPhones", json!(["1", "2"])), bad("businessPhones")),
            (with("mailNickname", json!("ada lovelace")), bad("mailNickname")),
            (with("userPrincipalName", json!("ada@elsewhere.com")), "400 Request_BadRequest: The domain portion of the userPrincipalName property is invalid. You must use one of the verified domain names in your organization.".into()),
            (with("id", json!("x")), "400 Request_BadRequest: Property 'id' is read-only and cannot be set.".into()),
            (with("favouriteColour", json!("x")), "400 Request_BadRequest: Property 'favouriteColour' does not exist as a declared property or extension property.".into()),
        ] {
            assert_eq!(refusal(&inner, b, true), want);
        }
        assert_eq!(
            refusal(
                &inner,
                json!({"department": null, "@odata.type": "#microsoft.graph.user"}),
                false
            ),
            "accepted",
            "a PATCH needs nothing"
        );
    }

    #[test]
    fn users_are_written_and_shown_as_graph_shows_them() {
        let (inner, _) = super::super::handle::tests::inner();
        let mut d = Directory::default();
        let id = new_user(&inner, &mut d, "Ada@Example.com", true, Instant::now());
        assert_eq!(
            find(&d, "ada@example.com"),
            Some(id.clone()),
            "case-insensitive"
        );
        let u = d.users.get_mut(&id).expect("user");
        apply(
            u,
            body(
                json!({"displayName": "Ada", "employeeId": "E1", "accountEnabled": false,
            "passwordProfile": {"password": "secret-pw-1"}}),
            ),
        );
        assert!(
            u.has_password && !u.fields.contains_key("passwordProfile"),
            "never kept"
        );
        let full = user_json(u);
        assert_eq!(
            (
                full["employeeId"].as_str(),
                full["accountEnabled"].as_bool()
            ),
            (Some("E1"), Some(false))
        );
        assert_eq!(full["businessPhones"], json!([]));
        assert_eq!(
            full["userPrincipalName"], "Ada@Example.com",
            "kept as written"
        );
        let view = user_view(u, None);
        assert!(
            view.get("employeeId").is_none() && view.get("accountEnabled").is_none(),
            "not in the default set: {view}"
        );
        assert_eq!(view["jobTitle"], Value::Null);
        let sel = vec!["employeeId".to_string()];
        assert_eq!(user_view(u, Some(&sel)), json!({"employeeId": "E1"}));
        apply(u, body(json!({"employeeId": null})));
        assert_eq!(u.employee_id(), None, "null clears");
        assert!(remove_user(&mut d, &id) && find(&d, "ada@example.com").is_none());
    }
}
