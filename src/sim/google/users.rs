//! `users.insert`, `get`, `update`, `patch`, `delete` and `list`, and the User resource as
//! Google returns it.

use super::paging::{listing, listing_domain, max_results, page_for};
use super::{
    Directory, Inner, duplicate, empty, error, forbidden, invalid, json_response, not_found,
    parse_object, query_map, ts, with_etag,
};
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{Method, StatusCode};
use axum::response::Response;
use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};
use std::sync::Arc;
use std::time::Instant;

/// A user as the simulator holds it.
#[derive(Debug, Clone)]
pub struct SimUser {
    /// Numeric, 21 digits, as Google's.
    pub id: String,
    pub primary_email: String,
    pub is_admin: bool,
    pub suspended: bool,
    /// `ADMIN` when an administrator suspended the user; only while suspended.
    pub suspension_reason: Option<String>,
    /// What clients write and read back, as sent: `name` (without `fullName`, which is
    /// derived), `externalIds`, `organizations`, `relations`, `orgUnitPath`,
    /// `changePasswordAtNextLogin`... Never the password.
    pub fields: Map<String, Value>,
    /// Whether a password was set (the value itself is never kept).
    pub has_password: bool,
    pub agreed_to_terms: bool,
    pub creation_time: DateTime<Utc>,
    pub last_login_time: Option<DateTime<Utc>>,
    /// Created through `users.insert` (false: seeded, or made by hand).
    pub via_api: bool,
    pub(super) visible_at: Instant,
    /// Until then, updates and deletes get 412 "User creation is not complete.".
    pub(super) settled_at: Instant,
}

impl SimUser {
    fn name_part(&self, part: &str) -> &str {
        self.fields
            .get("name")
            .and_then(|n| n.get(part))
            .and_then(Value::as_str)
            .unwrap_or("")
    }

    pub fn given_name(&self) -> &str {
        self.name_part("givenName")
    }

    pub fn family_name(&self) -> &str {
        self.name_part("familyName")
    }

    pub fn org_unit_path(&self) -> &str {
        self.fields
            .get("orgUnitPath")
            .and_then(Value::as_str)
            .unwrap_or("/")
    }

    /// The `value` of every `externalIds` entry of this `type` (`organization`: where the
    /// adapter keeps the HR employee id).
    pub fn external_ids(&self, kind: &str) -> Vec<&str> {
        self.fields
            .get("externalIds")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter(|e| e.get("type").and_then(Value::as_str) == Some(kind))
            .filter_map(|e| e.get("value").and_then(Value::as_str))
            .collect()
    }

    /// The first `organization` external id.
    pub fn employee_id(&self) -> Option<&str> {
        self.external_ids("organization").first().copied()
    }
}

/// Fields Google sets itself; ignored in requests.
const READ_ONLY: &[&str] = &[
    "kind",
    "id",
    "etag",
    "isAdmin",
    "isDelegatedAdmin",
    "creationTime",
    "lastLoginTime",
    "deletionTime",
    "agreedToTerms",
    "customerId",
    "suspensionReason",
    "suspensionTime",
    "isMailboxSetup",
    "isEnrolledIn2Sv",
    "isEnforcedIn2Sv",
    "aliases",
    "nonEditableAliases",
    "thumbnailPhotoUrl",
    "thumbnailPhotoEtag",
    "archivalTime",
];
const BOOL_FIELDS: &[&str] = &[
    "suspended",
    "changePasswordAtNextLogin",
    "includeInGlobalAddressList",
    "ipWhitelisted",
    "archived",
    "isGuestUser",
];
const STRING_FIELDS: &[&str] = &[
    "primaryEmail",
    "password",
    "hashFunction",
    "orgUnitPath",
    "recoveryEmail",
    "recoveryPhone",
];

/// A 21-digit id, unique per `n` (an odd multiplier that is no multiple of 5 permutes the
/// residues modulo 10^19), looking as random as Google's.
pub(super) fn user_id(n: u64) -> String {
    let x = (n as u128 * 7_046_029_254_386_353_131u128) % 10u128.pow(19);
    format!("10{x:019}")
}

pub(super) fn looks_like_email(s: &str) -> bool {
    match s.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
                && !domain.contains('@')
                && !s.chars().any(char::is_whitespace)
        }
        None => false,
    }
}

/// Check a users.insert (`creating`) or update body the way Google does, before anything
/// changes: types, the required fields, the e-mail's form, name lengths, the password.
pub(super) fn validate(body: &Map<String, Value>, creating: bool) -> Result<(), Response> {
    let typed = |fields: &[&str], ok: fn(&Value) -> bool, kind: &str| {
        for f in fields {
            if let Some(v) = body.get(*f).filter(|v| !v.is_null() && !ok(v)) {
                return Err(invalid(&format!(
                    "Invalid value at 'user.{f}' ({kind}), {v}"
                )));
            }
        }
        Ok(())
    };
    typed(BOOL_FIELDS, Value::is_boolean, "TYPE_BOOL")?;
    typed(STRING_FIELDS, Value::is_string, "TYPE_STRING")?;
    let bad_name = |part: &str| invalid(&format!("Invalid Given/Family Name: {part}"));
    match body.get("name") {
        None | Some(Value::Null) if creating => return Err(bad_name("GivenName")),
        None | Some(Value::Null) => {}
        Some(Value::Object(n)) => {
            for (key, part) in [("givenName", "GivenName"), ("familyName", "FamilyName")] {
                match n.get(key) {
                    None if creating => return Err(bad_name(part)),
                    None => {}
                    Some(Value::String(s)) if !s.trim().is_empty() && s.chars().count() <= 60 => {}
                    Some(_) => return Err(bad_name(part)),
                }
            }
        }
        Some(v) => {
            return Err(invalid(&format!(
                "Invalid value at 'user.name' (TYPE_MESSAGE), {v}"
            )));
        }
    }
    let text = |k: &str| body.get(k).and_then(Value::as_str);
    match text("primaryEmail") {
        None if creating => return Err(invalid("Invalid Input: primary_user_email")),
        Some(e) if !looks_like_email(e) => {
            return Err(invalid("Invalid Input: primary_user_email"));
        }
        _ => {}
    }
    match text("password") {
        None if creating => return Err(invalid("Invalid Password")),
        Some(p) if text("hashFunction").is_none() && !(8..=100).contains(&p.chars().count()) => {
            return Err(invalid("Invalid Password"));
        }
        _ => {}
    }
    if text("orgUnitPath").is_some_and(|p| !p.starts_with('/')) {
        return Err(invalid("Invalid Input: INVALID_OU_ID"));
    }
    Ok(())
}

/// Apply a validated body: patch semantics (absent fields kept, `null` clears, `name`
/// merged, arrays replaced whole); with `patch`, an empty or null repeated field is left
/// as it was, as Google's `users.patch` cannot clear one. The caller keeps the e-mail
/// index.
pub(super) fn apply(u: &mut SimUser, body: Map<String, Value>, patch: bool) {
    for (k, v) in body {
        match k.as_str() {
            "primaryEmail" => {
                if let Some(e) = v.as_str() {
                    u.primary_email = e.to_lowercase();
                }
            }
            "password" => u.has_password |= v.is_string(),
            "hashFunction" => {}
            "suspended" => set_suspended(u, v.as_bool().unwrap_or(false)),
            "name" => {
                let name = u.fields.entry("name").or_insert_with(|| json!({}));
                if let (Some(name), Value::Object(parts)) = (name.as_object_mut(), v) {
                    for (part, value) in parts.into_iter().filter(|(p, _)| p != "fullName") {
                        match value {
                            Value::Null => name.remove(&part),
                            value => name.insert(part, value),
                        };
                    }
                }
            }
            key if READ_ONLY.contains(&key) => {}
            _ if patch
                && (v.is_null() || v.as_array().is_some_and(Vec::is_empty))
                && u.fields.get(&k).is_some_and(Value::is_array) => {}
            _ if v.is_null() => {
                u.fields.remove(&k);
            }
            _ => {
                u.fields.insert(k, v);
            }
        }
    }
}

pub(super) fn set_suspended(u: &mut SimUser, suspended: bool) {
    u.suspended = suspended;
    u.suspension_reason = suspended.then(|| "ADMIN".to_string());
}

/// A new user with no fields yet (the caller applies them); returns the id.
pub(super) fn new_user(
    d: &mut Directory,
    email: &str,
    via_api: bool,
    visible_at: Instant,
    settled_at: Instant,
) -> String {
    d.next_id += 1;
    let id = user_id(d.next_id);
    d.by_email.insert(email.to_lowercase(), id.clone());
    d.users.insert(
        id.clone(),
        SimUser {
            id: id.clone(),
            primary_email: email.to_lowercase(),
            is_admin: false,
            suspended: false,
            suspension_reason: None,
            fields: Map::new(),
            has_password: false,
            agreed_to_terms: !via_api,
            creation_time: Utc::now(),
            last_login_time: None,
            via_api,
            visible_at,
            settled_at,
        },
    );
    id
}

/// The user a key names: a primary e-mail (case-insensitively) or an id.
pub(super) fn find(d: &Directory, key: &str) -> Option<String> {
    if d.users.contains_key(key) {
        return Some(key.to_string());
    }
    d.by_email.get(&key.to_lowercase()).cloned()
}

/// Resolve a `userKey`: an e-mail outside the account's domains is 403 `forbidden`; an
/// unknown user (or, for reads, one not visible yet) 404.
pub(super) fn resolve(
    inner: &Inner,
    d: &Directory,
    key: &str,
    reading: bool,
    what: &str,
) -> Result<String, Response> {
    if key.contains('@') && !inner.owns(key) {
        return Err(forbidden());
    }
    let now = Instant::now();
    find(d, key)
        .filter(|id| !reading || d.users.get(id).is_some_and(|u| u.visible_at <= now))
        .ok_or_else(|| not_found(what))
}

/// Move a user to a new primary e-mail: ours, and nobody else's.
pub(super) fn rename(
    inner: &Inner,
    d: &mut Directory,
    id: &str,
    email: &str,
) -> Result<(), Response> {
    let old = d.users.get(id).map(|u| u.primary_email.to_lowercase());
    let new = email.to_lowercase();
    if old.as_deref() == Some(new.as_str()) {
        return Ok(());
    }
    if !inner.owns(email) {
        return Err(forbidden());
    }
    if d.by_email.contains_key(&new) {
        return Err(duplicate("Entity already exists."));
    }
    if let Some(old) = old {
        d.by_email.remove(&old);
    }
    d.by_email.insert(new, id.to_string());
    Ok(())
}

/// The User resource as Google returns it (never the password).
pub(super) fn user_json(u: &SimUser, customer_id: &str) -> Value {
    let mut v = u.fields.clone();
    let (given, family) = (u.given_name(), u.family_name());
    let mut name = v.get("name").cloned().unwrap_or_else(|| json!({}));
    name["fullName"] = json!(format!("{given} {family}").trim());
    let never = DateTime::<Utc>::UNIX_EPOCH;
    for (k, val) in [
        ("kind", json!("admin#directory#user")),
        ("id", json!(u.id)),
        ("primaryEmail", json!(u.primary_email)),
        ("name", name),
        ("isAdmin", json!(u.is_admin)),
        ("isDelegatedAdmin", json!(false)),
        (
            "lastLoginTime",
            json!(ts(u.last_login_time.unwrap_or(never))),
        ),
        ("creationTime", json!(ts(u.creation_time))),
        ("agreedToTerms", json!(u.agreed_to_terms)),
        ("suspended", json!(u.suspended)),
        ("customerId", json!(customer_id)),
        ("isMailboxSetup", json!(true)),
        ("isEnrolledIn2Sv", json!(false)),
        ("isEnforcedIn2Sv", json!(false)),
    ] {
        v.insert(k.into(), val);
    }
    if let Some(r) = &u.suspension_reason {
        v.insert("suspensionReason".into(), json!(r));
    }
    for (k, default) in [
        ("orgUnitPath", json!("/")),
        ("archived", json!(false)),
        ("changePasswordAtNextLogin", json!(false)),
        ("ipWhitelisted", json!(false)),
        ("includeInGlobalAddressList", json!(true)),
        (
            "emails",
            json!([{"address": u.primary_email, "primary": true}]),
        ),
    ] {
        v.entry(k).or_insert(default);
    }
    with_etag(Value::Object(v))
}

/// 412 "User creation is not complete." while a new user is still being made.
fn settled(d: &Directory, id: &str) -> Result<(), Response> {
    match d
        .users
        .get(id)
        .is_some_and(|u| u.settled_at > Instant::now())
    {
        true => Err(error(
            StatusCode::PRECONDITION_FAILED,
            "conditionNotMet",
            "User creation is not complete.",
        )),
        false => Ok(()),
    }
}

fn user_ok(inner: &Inner, u: &SimUser) -> Response {
    json_response(StatusCode::OK, user_json(u, &inner.customer_id))
}

pub(super) async fn insert(
    State(inner): State<Arc<Inner>>,
    body: Bytes,
) -> Result<Response, Response> {
    let body = parse_object(&body)?;
    validate(&body, true)?;
    let email = body
        .get("primaryEmail")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    if !inner.owns(&email) {
        return Err(forbidden());
    }
    let settled_at = Instant::now() + inner.settings().creation_settle;
    let visible_at = inner.visible_at();
    let mut d = inner.lock();
    if d.by_email.contains_key(&email.to_lowercase()) {
        return Err(duplicate("Entity already exists."));
    }
    let id = new_user(&mut d, &email, true, visible_at, settled_at);
    d.counts.created(&email);
    let u = d.users.get_mut(&id).ok_or_else(|| not_found("userKey"))?;
    apply(u, body, false);
    Ok(user_ok(&inner, u))
}

pub(super) async fn get_one(
    State(inner): State<Arc<Inner>>,
    Path(key): Path<String>,
) -> Result<Response, Response> {
    let d = inner.lock();
    let id = resolve(&inner, &d, &key, true, "userKey")?;
    let u = d.users.get(&id).ok_or_else(|| not_found("userKey"))?;
    Ok(user_ok(&inner, u))
}

/// `users.update` (PUT) and `users.patch` (PATCH): the same merge, except that `patch`
/// cannot clear a repeated field.
pub(super) async fn write(
    State(inner): State<Arc<Inner>>,
    method: Method,
    Path(key): Path<String>,
    body: Bytes,
) -> Result<Response, Response> {
    let patch = method == Method::PATCH;
    let body = parse_object(&body)?;
    validate(&body, false)?;
    let mut d = inner.lock();
    let id = resolve(&inner, &d, &key, false, "userKey")?;
    settled(&d, &id)?;
    if let Some(email) = body.get("primaryEmail").and_then(Value::as_str) {
        rename(&inner, &mut d, &id, email)?;
    }
    let u = d.users.get_mut(&id).ok_or_else(|| not_found("userKey"))?;
    apply(u, body, patch);
    Ok(user_ok(&inner, u))
}

pub(super) async fn delete(
    State(inner): State<Arc<Inner>>,
    Path(key): Path<String>,
) -> Result<Response, Response> {
    let mut d = inner.lock();
    let id = resolve(&inner, &d, &key, false, "userKey")?;
    settled(&d, &id)?;
    remove_user(&mut d, &id);
    Ok(empty(StatusCode::NO_CONTENT))
}

/// Delete a user with their memberships.
pub(super) fn remove_user(d: &mut Directory, id: &str) -> bool {
    let Some(u) = d.users.remove(id) else {
        return false;
    };
    d.by_email.remove(&u.primary_email.to_lowercase());
    d.members.retain(|(_, member), _| member != id);
    true
}

/// One condition of a `users.list` query: `field:value` (`value*` a prefix) or
/// `field=value`.
#[derive(Debug, PartialEq)]
pub(super) struct Condition {
    field: String,
    value: String,
    prefix: bool,
}

const QUERY_FIELDS: &[&str] = &[
    "email",
    "externalid",
    "givenname",
    "familyname",
    "isadmin",
    "issuspended",
    "orgunitpath",
];

/// The conditions of a `query` (all must hold), or 400 `invalid` for a field the
/// simulator does not search.
pub(super) fn parse_query(query: &str) -> Result<Vec<Condition>, Response> {
    let mut out = Vec::new();
    let mut rest = query.trim();
    while !rest.is_empty() {
        let split = rest
            .find([':', '='])
            .ok_or_else(|| invalid("Invalid Input: query"))?;
        let field = rest[..split].trim().to_lowercase();
        rest = &rest[split + 1..];
        let (value, tail) = match rest.chars().next() {
            Some(q @ ('\'' | '"')) => {
                let end = rest[1..].find(q).map_or(rest.len(), |e| e + 1);
                (&rest[1..end], rest.get(end + 1..).unwrap_or(""))
            }
            _ => rest.split_at(rest.find(' ').unwrap_or(rest.len())),
        };
        if !QUERY_FIELDS.contains(&field.as_str()) || value.is_empty() {
            return Err(invalid("Invalid Input: query"));
        }
        let prefix = value.ends_with('*');
        out.push(Condition {
            field,
            value: value.trim_end_matches('*').to_lowercase(),
            prefix,
        });
        rest = tail.trim_start();
    }
    Ok(out)
}

fn matches(u: &SimUser, c: &Condition) -> bool {
    let eq = |s: &str| {
        let s = s.to_lowercase();
        if c.prefix {
            s.starts_with(&c.value)
        } else {
            s == c.value
        }
    };
    match c.field.as_str() {
        "email" => eq(&u.primary_email),
        "externalid" => u
            .fields
            .get("externalIds")
            .and_then(Value::as_array)
            .is_some_and(|ids| {
                ids.iter()
                    .filter_map(|e| e.get("value").and_then(Value::as_str))
                    .any(eq)
            }),
        "givenname" => eq(u.given_name()),
        "familyname" => eq(u.family_name()),
        "isadmin" => eq(&u.is_admin.to_string()),
        "issuspended" => eq(&u.suspended.to_string()),
        _ => eq(u.org_unit_path()),
    }
}

pub(super) async fn list(
    State(inner): State<Arc<Inner>>,
    RawQuery(raw): RawQuery,
) -> Result<Response, Response> {
    let q = query_map(raw);
    let domain = listing_domain(&inner, &q)?;
    let limit = max_results(&q, 100, 500, false)?;
    let conditions = parse_query(q.get("query").map(String::as_str).unwrap_or(""))?;
    let order = q.get("orderBy").map(String::as_str).unwrap_or("email");
    let now = Instant::now();
    let d = inner.lock();
    let items: Vec<(String, &SimUser)> = d
        .users
        .values()
        .filter(|u| u.visible_at <= now)
        .filter(|u| {
            domain
                .as_ref()
                .is_none_or(|dom| u.primary_email.to_lowercase().ends_with(dom.as_str()))
        })
        .filter(|u| conditions.iter().all(|c| matches(u, c)))
        .map(|u| {
            let email = u.primary_email.to_lowercase();
            let key = match order {
                "familyName" => format!("{}\u{1}{email}", u.family_name().to_lowercase()),
                "givenName" => format!("{}\u{1}{email}", u.given_name().to_lowercase()),
                _ => email,
            };
            (key, u)
        })
        .collect();
    let (users, next) = page_for(&inner, &format!("users:{order}"), &q, items, limit)?;
    let users = users
        .into_iter()
        .map(|u| user_json(u, &inner.customer_id))
        .collect();
    Ok(listing("admin#directory#users", "users", users, next))
}

#[cfg(test)]
mod tests {
    use super::super::tests::read;
    use super::*;

    fn body(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap_or_default()
    }

    fn refusal(v: Value, creating: bool) -> String {
        match validate(&body(v), creating) {
            Ok(()) => "accepted".into(),
            Err(r) => {
                let (status, b) = read(r);
                format!("{status} {}", b["error"]["message"].as_str().unwrap_or(""))
            }
        }
    }

    #[test]
    fn inserts_are_validated_as_google_validates_them() {
        let ok = json!({"primaryEmail": "ada@example.com", "password": "correct horse",
                        "name": {"givenName": "Ada", "familyName": "Lovelace"}});
        assert_eq!(refusal(ok.clone(), true), "accepted");
        let with = |k: &str, v: Value| {
            let mut b = ok.clone();
            b[k] = v;
            b
        };
        for (b, want) in [
            (
                with("primaryEmail", json!("not-an-email")),
                "400 Invalid Input: primary_user_email",
            ),
            (with("password", json!("short")), "400 Invalid Password"),
            (
                with("name", json!({"givenName": "Ada"})),
                "400 Invalid Given/Family Name: FamilyName",
            ),
            (
                with("name", json!({"givenName": " ", "familyName": "L"})),
                "400 Invalid Given/Family Name: GivenName",
            ),
            (
                with("suspended", json!("yes")),
                "400 Invalid value at 'user.suspended' (TYPE_BOOL), \"yes\"",
            ),
            (
                with("orgUnitPath", json!("Eng")),
                "400 Invalid Input: INVALID_OU_ID",
            ),
            (
                with("name", json!("Ada")),
                "400 Invalid value at 'user.name' (TYPE_MESSAGE), \"Ada\"",
            ),
        ] {
            assert_eq!(refusal(b, true), want);
        }
        // A hashed password need not be 8 characters; updates need none of the fields.
        let mut hashed = with("hashFunction", json!("SHA-1"));
        hashed["password"] = json!("abc");
        assert_eq!(refusal(hashed, true), "accepted");
        assert_eq!(refusal(json!({"suspended": true}), false), "accepted");
        assert_eq!(
            refusal(json!({}), true),
            "400 Invalid Given/Family Name: GivenName"
        );
    }

    #[test]
    fn patch_cannot_clear_repeated_fields_but_update_can() {
        let mut d = Directory::default();
        let now = Instant::now();
        let id = new_user(&mut d, "ada@example.com", true, now, now);
        let u = d.users.get_mut(&id).expect("user");
        apply(
            u,
            body(
                json!({"name": {"givenName": "Ada", "familyName": "Lovelace"},
            "externalIds": [{"value": "E1", "type": "organization"}], "password": "secret123"}),
            ),
            false,
        );
        assert_eq!(u.employee_id(), Some("E1"));
        assert!(
            u.has_password && !u.fields.contains_key("password"),
            "never kept"
        );
        apply(
            u,
            body(json!({"externalIds": [], "name": {"givenName": "Augusta"}})),
            true,
        );
        assert_eq!(u.employee_id(), Some("E1"), "patch leaves it");
        assert_eq!(
            (u.given_name(), u.family_name()),
            ("Augusta", "Lovelace"),
            "name merged"
        );
        apply(
            u,
            body(json!({"externalIds": null, "suspended": true, "isAdmin": true})),
            false,
        );
        assert_eq!(u.employee_id(), None, "update clears it");
        assert_eq!(
            (u.suspended, u.suspension_reason.as_deref(), u.is_admin),
            (true, Some("ADMIN"), false)
        );
        let v = user_json(u, "C0");
        assert_eq!(v["name"]["fullName"], "Augusta Lovelace");
        assert_eq!(v["suspensionReason"], "ADMIN");
        assert_eq!(v["orgUnitPath"], "/");
        assert!(v.get("password").is_none() && v["etag"].is_string(), "{v}");
    }

    #[test]
    fn ids_are_21_digits_and_unique() {
        let ids: std::collections::HashSet<String> = (1..5000).map(user_id).collect();
        assert_eq!(ids.len(), 4999);
        assert!(
            ids.iter()
                .all(|i| i.len() == 21 && i.chars().all(|c| c.is_ascii_digit()))
        );
    }

    #[test]
    fn queries_parse_and_match() {
        let c = parse_query("email:ada* externalId:'E 1' isSuspended=false").expect("query");
        assert_eq!(c.len(), 3);
        assert_eq!(
            c[1],
            Condition {
                field: "externalid".into(),
                value: "e 1".into(),
                prefix: false
            }
        );
        let mut d = Directory::default();
        let now = Instant::now();
        let id = new_user(&mut d, "Ada@example.com", true, now, now);
        let u = d.users.get_mut(&id).expect("user");
        assert_eq!(u.primary_email, "ada@example.com", "kept lower-cased");
        apply(
            u,
            body(json!({"externalIds": [{"value": "E 1", "type": "organization"}]})),
            false,
        );
        assert!(c.iter().all(|c| matches(u, c)));
        set_suspended(u, true);
        assert!(!c.iter().all(|c| matches(u, c)));
        assert!(parse_query("email:").is_err());
        assert!(parse_query("phone:123").is_err());
        assert!(parse_query("").expect("empty").is_empty());
    }
}
