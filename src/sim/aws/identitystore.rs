//! The IAM Identity Center identity store in the AWS simulator ([`super`]): users,
//! groups and group memberships over AWS JSON 1.1 (`X-Amz-Target:
//! AWSIdentityStore.<Operation>`, API 2020-06-15), shaped as botocore's
//! `identitystore/2020-06-15/service-2.json` describes them.
//!
//! Behaviour as the model and the service document it: every request names the store
//! (`IdentityStoreId`; another store is `ResourceNotFoundException` with `ResourceType`
//! `IDENTITY_STORE`); ids are `STOREDIGITS-UUID`; `UserName` is unique whatever its case and
//! a group's `DisplayName` too (`ConflictException`, `Reason`
//! `UNIQUENESS_CONSTRAINT_VIOLATION`), and so is a (group, member) membership; unknown
//! users, groups and memberships are `ResourceNotFoundException` with `ResourceType` and
//! `ResourceId`; malformed input is `ValidationException` (the reserved names
//! `Administrator` and `AWSAdministrators`, more than one e-mail, `MaxResults` outside
//! 1-100, a `NextToken` this service did not issue, a filter on anything but
//! `UserName`/`DisplayName`); a body that is not JSON is `SerializationException`.
//! Listings page with `MaxResults` and an opaque `NextToken`. All errors are HTTP 400
//! (the JSON protocol's default; the model sets no other status).
//!
//! The API has no enabled/disabled state for users, so the simulator has none either.

use super::account::Inner;
use super::model::{Membership, Store};
pub use super::model::{StoreGroup, StoreUser};
use super::wire::AwsError;
use serde_json::{Map, Value, json};
use std::time::Instant;

/// `1234567890-` + a UUID: what the store's resource ids look like (the digits are the
/// store id's).
fn resource_id(store_id: &str) -> String {
    let digits = store_id.strip_prefix("d-").unwrap_or(store_id);
    let uuid = crate::sim::fault::request_id().to_lowercase();
    format!("{digits}-{uuid}")
}

pub(crate) fn new_group(s: &mut Store, store_id: &str, display_name: &str) -> String {
    let seq = s.next_seq();
    let id = resource_id(store_id);
    s.groups.insert(
        id.clone(),
        StoreGroup {
            group_id: id.clone(),
            display_name: display_name.to_string(),
            description: None,
            seq,
        },
    );
    id
}

// ---------------------------------------------------------------------------------------
// Input
// ---------------------------------------------------------------------------------------

fn validation(message: impl Into<String>) -> AwsError {
    AwsError::bad("ValidationException", message)
}

fn not_found(kind: &str, id: &str) -> AwsError {
    AwsError::bad(
        "ResourceNotFoundException",
        format!("{kind} {id} not found in this identity store"),
    )
    .with("ResourceType", kind)
    .with("ResourceId", id)
}

fn conflict(message: impl Into<String>) -> AwsError {
    AwsError::bad("ConflictException", message).with("Reason", "UNIQUENESS_CONSTRAINT_VIOLATION")
}

/// A required string member of 1-`max` characters.
fn text<'a>(b: &'a Map<String, Value>, key: &str, max: usize) -> Result<&'a str, AwsError> {
    match b.get(key) {
        Some(Value::String(s)) if !s.is_empty() && s.chars().count() <= max => Ok(s),
        Some(Value::String(_)) => Err(validation(format!(
            "1 validation error detected: Value at '{}' failed to satisfy constraint: Member must have length between 1 and {max}",
            lower_first(key)
        ))),
        Some(_) => Err(AwsError::bad(
            "SerializationException",
            format!("{key} must be a string"),
        )),
        None => Err(validation(format!(
            "1 validation error detected: Value null at '{}' failed to satisfy constraint: Member must not be null",
            lower_first(key)
        ))),
    }
}

fn lower_first(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_lowercase().chain(c).collect(),
        None => String::new(),
    }
}

/// `[\p{L}\p{M}\p{S}\p{N}\p{P}]+`: no spaces, no control characters.
fn valid_user_name(s: &str) -> bool {
    !s.is_empty()
        && s.chars().count() <= 128
        && s.chars().all(|c| !c.is_whitespace() && !c.is_control())
}

fn max_results(b: &Map<String, Value>) -> Result<usize, AwsError> {
    match b.get("MaxResults") {
        None | Some(Value::Null) => Ok(100),
        Some(v) => match v.as_i64() {
            Some(n) if (1..=100).contains(&n) => Ok(n as usize),
            _ => Err(validation(
                "1 validation error detected: Value at 'maxResults' failed to satisfy constraint: Member must have value between 1 and 100",
            )),
        },
    }
}

/// One page of `items` (sorted by sequence), from the opaque `NextToken`.
fn page<T: Clone>(
    mut items: Vec<(u64, T)>,
    b: &Map<String, Value>,
) -> Result<(Vec<T>, Option<String>), AwsError> {
    let max = max_results(b)?;
    let from = match b.get("NextToken") {
        None | Some(Value::Null) => 0,
        Some(Value::String(t)) => t
            .strip_prefix("sim:")
            .and_then(|h| u64::from_str_radix(h, 16).ok())
            .ok_or_else(|| validation("The NextToken is not one this service issued"))?,
        Some(_) => return Err(validation("NextToken must be a string")),
    };
    items.sort_by_key(|(seq, _)| *seq);
    let mut it = items.into_iter().filter(|(seq, _)| *seq >= from);
    let page: Vec<T> = it.by_ref().take(max).map(|(_, t)| t).collect();
    let next = it.next().map(|(seq, _)| format!("sim:{seq:x}"));
    Ok((page, next))
}

fn with_token(mut v: Value, next: Option<String>) -> Value {
    if let Some(t) = next {
        v["NextToken"] = json!(t);
    }
    v
}

// ---------------------------------------------------------------------------------------
// Shapes
// ---------------------------------------------------------------------------------------

/// The members of a user a caller may set (`CreateUser`), as the model names them.
const USER_MEMBERS: &[&str] = &[
    "Name",
    "DisplayName",
    "NickName",
    "ProfileUrl",
    "Emails",
    "Addresses",
    "PhoneNumbers",
    "UserType",
    "Title",
    "PreferredLanguage",
    "Locale",
    "Timezone",
];

/// `UpdateUser` attribute paths -> (member, sub-member).
fn update_path(path: &str) -> Option<(&'static str, Option<&'static str>)> {
    let p = path.to_ascii_lowercase();
    Some(match p.as_str() {
        "username" => ("UserName", None),
        "displayname" => ("DisplayName", None),
        "nickname" => ("NickName", None),
        "profileurl" => ("ProfileUrl", None),
        "usertype" => ("UserType", None),
        "title" => ("Title", None),
        "preferredlanguage" => ("PreferredLanguage", None),
        "locale" => ("Locale", None),
        "timezone" => ("Timezone", None),
        "emails" => ("Emails", None),
        "addresses" => ("Addresses", None),
        "phonenumbers" => ("PhoneNumbers", None),
        "name.givenname" => ("Name", Some("GivenName")),
        "name.familyname" => ("Name", Some("FamilyName")),
        "name.middlename" => ("Name", Some("MiddleName")),
        "name.formatted" => ("Name", Some("Formatted")),
        "name.honorificprefix" => ("Name", Some("HonorificPrefix")),
        "name.honorificsuffix" => ("Name", Some("HonorificSuffix")),
        _ => return None,
    })
}

fn user_json(u: &StoreUser, store_id: &str) -> Value {
    let mut v = Map::new();
    v.insert("IdentityStoreId".into(), json!(store_id));
    v.insert("UserId".into(), json!(u.user_id));
    v.insert("UserName".into(), json!(u.user_name));
    for (k, x) in &u.attributes {
        v.insert(k.clone(), x.clone());
    }
    Value::Object(v)
}

fn group_json(g: &StoreGroup, store_id: &str) -> Value {
    let mut v =
        json!({"IdentityStoreId": store_id, "GroupId": g.group_id, "DisplayName": g.display_name});
    if let Some(d) = &g.description {
        v["Description"] = json!(d);
    }
    v
}

fn membership_json(m: &Membership, store_id: &str) -> Value {
    json!({
        "IdentityStoreId": store_id,
        "MembershipId": m.membership_id,
        "GroupId": m.group_id,
        "MemberId": {"UserId": m.user_id},
    })
}

/// Check a user's settable members: types, one e-mail at most, the reserved names.
fn check_user(user_name: &str, attrs: &Map<String, Value>) -> Result<(), AwsError> {
    if !valid_user_name(user_name) {
        return Err(validation(
            "1 validation error detected: Value at 'userName' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\p{L}\\p{M}\\p{S}\\p{N}\\p{P}]+ and have length between 1 and 128",
        ));
    }
    if ["administrator", "awsadministrators"].contains(&user_name.to_lowercase().as_str()) {
        return Err(validation(format!("{user_name} is a reserved name")));
    }
    for (k, v) in attrs {
        let ok = match k.as_str() {
            "Name" => v
                .as_object()
                .is_some_and(|n| n.values().all(Value::is_string)),
            "Emails" | "Addresses" | "PhoneNumbers" => v
                .as_array()
                .is_some_and(|a| !a.is_empty() && a.len() <= 1 && a.iter().all(Value::is_object)),
            _ => v
                .as_str()
                .is_some_and(|s| !s.is_empty() && s.chars().count() <= 1024),
        };
        if !ok {
            return Err(validation(format!(
                "1 validation error detected: Value at '{}' failed to satisfy constraint",
                lower_first(k)
            )));
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Operations
// ---------------------------------------------------------------------------------------

/// Every operation [`handle`] answers.
pub const OPERATIONS: &[&str] = &[
    "CreateUser",
    "DescribeUser",
    "UpdateUser",
    "DeleteUser",
    "ListUsers",
    "GetUserId",
    "CreateGroup",
    "DescribeGroup",
    "DeleteGroup",
    "ListGroups",
    "GetGroupId",
    "CreateGroupMembership",
    "DeleteGroupMembership",
    "DescribeGroupMembership",
    "GetGroupMembershipId",
    "ListGroupMemberships",
    "ListGroupMembershipsForMember",
    "IsMemberInGroups",
];

/// Run one operation (`target` is the `X-Amz-Target` header).
pub(crate) fn handle(inner: &Inner, target: &str, body: &[u8]) -> Result<Value, AwsError> {
    let Some(op) = target
        .strip_prefix("AWSIdentityStore.")
        .filter(|op| OPERATIONS.contains(op))
    else {
        return Err(AwsError::bad(
            "UnknownOperationException",
            format!("Unknown operation {target:?}"),
        ));
    };
    let body: &[u8] = if body.iter().all(u8::is_ascii_whitespace) {
        b"{}"
    } else {
        body
    };
    let Ok(Value::Object(b)) = serde_json::from_slice::<Value>(body) else {
        return Err(AwsError::bad(
            "SerializationException",
            "The request body is not a JSON object",
        ));
    };
    let store_id = inner.opts.identity_store_id.as_str();
    let asked = text(&b, "IdentityStoreId", 36)?;
    if asked != store_id {
        return Err(not_found("IDENTITY_STORE", asked));
    }
    let now = Instant::now();
    let visible_from = inner.visible_from();
    let mut account = inner.lock();
    let account = &mut *account;
    let s = &mut account.store;
    let user_of = |s: &Store, id: &str| -> Result<StoreUser, AwsError> {
        s.users
            .get(id)
            .filter(|u| u.visible_at <= now)
            .cloned()
            .ok_or_else(|| not_found("USER", id))
    };
    let member_user = |b: &Map<String, Value>| -> Result<String, AwsError> {
        match b.get("MemberId").and_then(|m| m.get("UserId")) {
            Some(Value::String(u)) if !u.is_empty() => Ok(u.clone()),
            _ => Err(validation("MemberId.UserId is required")),
        }
    };
    match op {
        "CreateUser" => {
            let user_name = text(&b, "UserName", 128)?.to_string();
            let attrs: Map<String, Value> = b
                .iter()
                .filter(|(k, v)| USER_MEMBERS.contains(&k.as_str()) && !v.is_null())
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            check_user(&user_name, &attrs)?;
            if let Some(why) = account.rejected.get(&user_name.to_lowercase()) {
                return Err(validation(why.clone()));
            }
            let s = &mut account.store;
            if s.users
                .values()
                .any(|u| u.user_name.eq_ignore_ascii_case(&user_name))
            {
                return Err(conflict(format!("Duplicate UserName {user_name}")));
            }
            let seq = s.next_seq();
            let id = resource_id(store_id);
            s.users.insert(
                id.clone(),
                StoreUser {
                    user_id: id.clone(),
                    user_name: user_name.clone(),
                    attributes: attrs,
                    seq,
                    visible_at: visible_from,
                },
            );
            s.counts.created(&user_name);
            Ok(json!({"IdentityStoreId": store_id, "UserId": id}))
        }
        "DescribeUser" => {
            let id = text(&b, "UserId", 47)?;
            Ok(user_json(&user_of(s, id)?, store_id))
        }
        "UpdateUser" => {
            let id = text(&b, "UserId", 47)?.to_string();
            let ops = match b.get("Operations") {
                Some(Value::Array(ops)) if !ops.is_empty() && ops.len() <= 100 => ops.clone(),
                _ => return Err(validation("Operations must list 1 to 100 operations")),
            };
            let current = s
                .users
                .get(&id)
                .cloned()
                .ok_or_else(|| not_found("USER", &id))?;
            let mut user_name = current.user_name.clone();
            let mut attrs = current.attributes.clone();
            for o in &ops {
                let path = o.get("AttributePath").and_then(Value::as_str).unwrap_or("");
                let Some((member, sub)) = update_path(path) else {
                    return Err(validation(format!(
                        "The attribute path {path:?} is not supported"
                    )));
                };
                let value = o.get("AttributeValue").filter(|v| !v.is_null()).cloned();
                match (member, sub, value) {
                    ("UserName", _, Some(Value::String(n))) => user_name = n,
                    ("UserName", _, _) => {
                        return Err(validation(
                            "userName must be a string and cannot be removed",
                        ));
                    }
                    (m, None, Some(v)) => {
                        attrs.insert(m.to_string(), v);
                    }
                    (m, None, None) => {
                        attrs.remove(m);
                    }
                    (m, Some(sm), v) => {
                        let slot = attrs.entry(m.to_string()).or_insert_with(|| json!({}));
                        if let Some(obj) = slot.as_object_mut() {
                            match v {
                                Some(v) => {
                                    obj.insert(sm.to_string(), v);
                                }
                                None => {
                                    obj.remove(sm);
                                }
                            }
                        }
                    }
                }
            }
            check_user(&user_name, &attrs)?;
            if s.users
                .values()
                .any(|u| u.user_id != id && u.user_name.eq_ignore_ascii_case(&user_name))
            {
                return Err(conflict(format!("Duplicate UserName {user_name}")));
            }
            if let Some(u) = s.users.get_mut(&id) {
                u.user_name = user_name;
                u.attributes = attrs;
            }
            Ok(json!({}))
        }
        "DeleteUser" => {
            let id = text(&b, "UserId", 47)?;
            if s.users.remove(id).is_none() {
                return Err(not_found("USER", id));
            }
            s.memberships.retain(|_, m| m.user_id != id);
            Ok(json!({}))
        }
        "ListUsers" => {
            let filter = list_filter(&b, "UserName")?;
            let items = s
                .users
                .values()
                .filter(|u| u.visible_at <= now)
                .filter(|u| {
                    filter
                        .as_ref()
                        .is_none_or(|f| u.user_name.eq_ignore_ascii_case(f))
                })
                .map(|u| (u.seq, user_json(u, store_id)))
                .collect();
            let (users, next) = page(items, &b)?;
            Ok(with_token(json!({"Users": users}), next))
        }
        "GetUserId" => {
            let (path, value) = alternate_identifier(&b)?;
            if !path.eq_ignore_ascii_case("userName") {
                return Err(validation(format!(
                    "{path} is not a unique attribute of users"
                )));
            }
            let u = s
                .users
                .values()
                .filter(|u| u.visible_at <= now)
                .find(|u| u.user_name.eq_ignore_ascii_case(&value))
                .ok_or_else(|| not_found("USER", &value))?;
            Ok(json!({"IdentityStoreId": store_id, "UserId": u.user_id}))
        }
        "CreateGroup" => {
            let name = text(&b, "DisplayName", 1024)?.to_string();
            if s.groups
                .values()
                .any(|g| g.display_name.eq_ignore_ascii_case(&name))
            {
                return Err(conflict(format!("Duplicate GroupDisplayName {name}")));
            }
            let id = new_group(s, store_id, &name);
            if let (Some(g), Some(Value::String(d))) = (s.groups.get_mut(&id), b.get("Description"))
            {
                g.description = Some(d.clone());
            }
            Ok(json!({"IdentityStoreId": store_id, "GroupId": id}))
        }
        "DescribeGroup" => {
            let id = text(&b, "GroupId", 47)?;
            let g = s.groups.get(id).ok_or_else(|| not_found("GROUP", id))?;
            Ok(group_json(g, store_id))
        }
        "DeleteGroup" => {
            let id = text(&b, "GroupId", 47)?;
            if s.groups.remove(id).is_none() {
                return Err(not_found("GROUP", id));
            }
            s.memberships.retain(|_, m| m.group_id != id);
            Ok(json!({}))
        }
        "ListGroups" => {
            let filter = list_filter(&b, "DisplayName")?;
            let items = s
                .groups
                .values()
                .filter(|g| {
                    filter
                        .as_ref()
                        .is_none_or(|f| g.display_name.eq_ignore_ascii_case(f))
                })
                .map(|g| (g.seq, group_json(g, store_id)))
                .collect();
            let (groups, next) = page(items, &b)?;
            Ok(with_token(json!({"Groups": groups}), next))
        }
        "GetGroupId" => {
            let (path, value) = alternate_identifier(&b)?;
            if !path.eq_ignore_ascii_case("displayName") {
                return Err(validation(format!(
                    "{path} is not a unique attribute of groups"
                )));
            }
            let g = s
                .groups
                .values()
                .find(|g| g.display_name.eq_ignore_ascii_case(&value))
                .ok_or_else(|| not_found("GROUP", &value))?;
            Ok(json!({"IdentityStoreId": store_id, "GroupId": g.group_id}))
        }
        "CreateGroupMembership" => {
            let gid = text(&b, "GroupId", 47)?.to_string();
            let uid = member_user(&b)?;
            if !s.groups.contains_key(&gid) {
                return Err(not_found("GROUP", &gid));
            }
            if !s.users.contains_key(&uid) {
                return Err(not_found("USER", &uid));
            }
            if s.memberships
                .values()
                .any(|m| m.group_id == gid && m.user_id == uid)
            {
                return Err(conflict(format!(
                    "User {uid} is already a member of group {gid}"
                )));
            }
            let seq = s.next_seq();
            let mid = resource_id(store_id);
            s.memberships.insert(
                mid.clone(),
                Membership {
                    membership_id: mid.clone(),
                    group_id: gid.clone(),
                    user_id: uid.clone(),
                    seq,
                    visible_at: visible_from,
                },
            );
            s.counts.added(&gid, &uid);
            Ok(json!({"IdentityStoreId": store_id, "MembershipId": mid}))
        }
        "DeleteGroupMembership" => {
            let mid = text(&b, "MembershipId", 47)?;
            if s.memberships.remove(mid).is_none() {
                return Err(not_found("GROUP_MEMBERSHIP", mid));
            }
            Ok(json!({}))
        }
        "DescribeGroupMembership" => {
            let mid = text(&b, "MembershipId", 47)?;
            let m = s
                .memberships
                .get(mid)
                .filter(|m| m.visible_at <= now)
                .ok_or_else(|| not_found("GROUP_MEMBERSHIP", mid))?;
            Ok(membership_json(m, store_id))
        }
        "GetGroupMembershipId" => {
            let gid = text(&b, "GroupId", 47)?;
            let uid = member_user(&b)?;
            let m = s
                .memberships
                .values()
                .filter(|m| m.visible_at <= now)
                .find(|m| m.group_id == gid && m.user_id == uid)
                .ok_or_else(|| not_found("GROUP_MEMBERSHIP", &format!("{gid}/{uid}")))?;
            Ok(json!({"IdentityStoreId": store_id, "MembershipId": m.membership_id}))
        }
        "ListGroupMemberships" | "ListGroupMembershipsForMember" => {
            let by_group = op == "ListGroupMemberships";
            let key = if by_group {
                let gid = text(&b, "GroupId", 47)?.to_string();
                if !s.groups.contains_key(&gid) {
                    return Err(not_found("GROUP", &gid));
                }
                gid
            } else {
                member_user(&b)?
            };
            let items = s
                .memberships
                .values()
                .filter(|m| m.visible_at <= now)
                .filter(|m| {
                    if by_group {
                        m.group_id == key
                    } else {
                        m.user_id == key
                    }
                })
                .map(|m| (m.seq, membership_json(m, store_id)))
                .collect();
            let (ms, next) = page(items, &b)?;
            Ok(with_token(json!({"GroupMemberships": ms}), next))
        }
        "IsMemberInGroups" => {
            let uid = member_user(&b)?;
            let Some(Value::Array(gids)) = b.get("GroupIds") else {
                return Err(validation("GroupIds is required"));
            };
            let results: Vec<Value> = gids
                .iter()
                .filter_map(Value::as_str)
                .map(|gid| {
                    let exists = s
                        .memberships
                        .values()
                        .any(|m| m.visible_at <= now && m.group_id == gid && m.user_id == uid);
                    json!({"GroupId": gid, "MemberId": {"UserId": uid}, "MembershipExists": exists})
                })
                .collect();
            Ok(json!({"Results": results}))
        }
        other => Err(AwsError::bad(
            "UnknownOperationException",
            format!("Unknown operation {other:?}"),
        )),
    }
}

/// The one (deprecated) `Filters` entry ListUsers/ListGroups accept: on `attr` only.
fn list_filter(b: &Map<String, Value>, attr: &str) -> Result<Option<String>, AwsError> {
    let Some(filters) = b.get("Filters").filter(|f| !f.is_null()) else {
        return Ok(None);
    };
    let Some(list) = filters.as_array().filter(|l| l.len() <= 1) else {
        return Err(validation("Filters must list at most one filter"));
    };
    let Some(f) = list.first() else {
        return Ok(None);
    };
    let path = f.get("AttributePath").and_then(Value::as_str).unwrap_or("");
    let value = f.get("AttributeValue").and_then(Value::as_str);
    match value {
        Some(v) if path.eq_ignore_ascii_case(attr) => Ok(Some(v.to_string())),
        _ => Err(validation(format!(
            "Filters support only the attribute path {attr} with a string value"
        ))),
    }
}

/// `AlternateIdentifier.UniqueAttribute` as (path, value).
fn alternate_identifier(b: &Map<String, Value>) -> Result<(String, String), AwsError> {
    let ua = b
        .get("AlternateIdentifier")
        .and_then(|a| a.get("UniqueAttribute"));
    let path = ua
        .and_then(|u| u.get("AttributePath"))
        .and_then(Value::as_str);
    let value = ua
        .and_then(|u| u.get("AttributeValue"))
        .and_then(Value::as_str);
    match (path, value) {
        (Some(p), Some(v)) => Ok((p.to_string(), v.to_string())),
        _ => Err(validation(
            "AlternateIdentifier needs UniqueAttribute with AttributePath and a string AttributeValue",
        )),
    }
}

/// Every error code the identity store part (and the account's authentication, the
/// faults) can answer with.
pub const ERROR_CODES: &[&str] = &[
    "ValidationException",
    "SerializationException",
    "ResourceNotFoundException",
    "ConflictException",
    "ThrottlingException",
    "InternalServerException",
    "UnknownOperationException",
    "MissingAuthenticationTokenException",
    "IncompleteSignatureException",
    "UnrecognizedClientException",
    "InvalidSignatureException",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_page_and_unknown_tokens_are_refused() {
        let items: Vec<(u64, u32)> = (1..=5).map(|i| (i, i as u32)).collect();
        let b = |v: Value| v.as_object().cloned().unwrap_or_default();
        let (p, next) = page(items.clone(), &b(json!({"MaxResults": 2}))).unwrap();
        assert_eq!(p, [1, 2]);
        let (p, next) = page(
            items.clone(),
            &b(json!({"MaxResults": 2, "NextToken": next})),
        )
        .unwrap();
        assert_eq!(p, [3, 4]);
        let (p, next) = page(
            items.clone(),
            &b(json!({"MaxResults": 2, "NextToken": next})),
        )
        .unwrap();
        assert_eq!((p, next), (vec![5], None));
        for bad in [
            json!({"NextToken": "abc"}),
            json!({"MaxResults": 0}),
            json!({"MaxResults": 101}),
            json!({"NextToken": 3}),
        ] {
            assert_eq!(
                page(items.clone(), &b(bad)).unwrap_err().code,
                "ValidationException"
            );
        }
    }

    #[test]
    fn users_are_checked() {
        let ok = json!({"Name": {"GivenName": "A"}, "Emails": [{"Value": "a@x"}], "Title": "T"});
        assert!(check_user("ada", ok.as_object().unwrap()).is_ok());
        assert!(check_user("has space", &Map::new()).is_err());
        assert!(check_user("Administrator", &Map::new()).is_err());
        let two = json!({"Emails": [{"Value": "a@x"}, {"Value": "b@x"}]});
        assert!(check_user("ada", two.as_object().unwrap()).is_err());
        let bad = json!({"Title": 3});
        assert!(check_user("ada", bad.as_object().unwrap()).is_err());
        assert_eq!(
            update_path("name.givenName"),
            Some(("Name", Some("GivenName")))
        );
        assert_eq!(update_path("emails.value"), None);
    }
}
