//! IAM in the AWS simulator ([`super`]): users (with paths and tags), groups and
//! memberships, access keys and console login profiles, over the query protocol of API
//! version 2010-05-08, as `specs/aws/service-2.json` describes the actions.
//!
//! Behaviour as IAM documents it: names are unique case-insensitively (`EntityAlreadyExists`,
//! 409); unknown users, groups, keys and login profiles are `NoSuchEntity` (404); names,
//! paths and tags are checked against the model's patterns and lengths (`ValidationError`,
//! 400); a user with keys, a login profile or groups cannot be deleted, nor a group with
//! members (`DeleteConflict`, 409); at most two access keys a user and fifty tags
//! (`LimitExceeded`, 409). `AddUserToGroup` is idempotent. Listings page with
//! `MaxItems` (1-1000, default 100) and an opaque `Marker` with `IsTruncated` (unlike
//! moto, which returns everything at once); list results carry no tags, `GetUser` does.

use super::account::{AwsSimOptions, Caller, Inner};
use super::model::{Account, Iam};
pub use super::model::{IamGroup, IamUser};
use super::wire::{AwsError, Params, aws_id, el, iso8601};
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use std::collections::BTreeMap;
use std::sync::LazyLock;
use std::time::Instant;

pub fn user_arn(account: &str, path: &str, name: &str) -> String {
    format!("arn:aws:iam::{account}:user{path}{name}")
}

fn group_arn(account: &str, path: &str, name: &str) -> String {
    format!("arn:aws:iam::{account}:group{path}{name}")
}

pub(crate) fn new_user(
    a: &mut Account,
    name: &str,
    path: &str,
    tags: Vec<(String, String)>,
    visible_at: Instant,
    opts: &AwsSimOptions,
) {
    a.iam.users.insert(
        name.to_lowercase(),
        IamUser {
            user_name: name.to_string(),
            user_id: aws_id("AIDA", 17),
            arn: user_arn(&opts.account_id, path, name),
            path: path.to_string(),
            created: Utc::now(),
            tags,
            login_profile: false,
            visible_at,
        },
    );
    a.iam.counts.created(name);
}

pub(crate) fn new_group(a: &mut Account, account: &str, name: &str, path: &str) {
    a.iam.groups.insert(
        name.to_lowercase(),
        IamGroup {
            group_name: name.to_string(),
            group_id: aws_id("AGPA", 17),
            arn: group_arn(account, path, name),
            path: path.to_string(),
            created: Utc::now(),
            members: BTreeMap::new(),
        },
    );
}

/// A new active key for an existing user: (id, secret); None when the user does not exist.
pub(crate) fn create_access_key(a: &mut Account, user: &str) -> Option<(String, String)> {
    let name = a.iam.users.get(&user.to_lowercase())?.user_name.clone();
    let id = aws_id("AKIA", 16);
    let secret = super::wire::secret_key();
    a.keys.insert(
        id.clone(),
        super::model::AccessKey {
            user: name,
            secret: secret.clone(),
            active: true,
            created: Utc::now(),
        },
    );
    Some((id, secret))
}

// ---------------------------------------------------------------------------------------
// Input checks (the model's patterns and lengths)
// ---------------------------------------------------------------------------------------

fn validation(value: &str, field: &str, constraint: &str) -> AwsError {
    AwsError::bad(
        "ValidationError",
        format!(
            "1 validation error detected: Value '{value}' at '{field}' failed to satisfy constraint: {constraint}"
        ),
    )
}

fn required<'a>(p: &'a Params, name: &str) -> Result<&'a str, AwsError> {
    p.get(name).map(String::as_str).ok_or_else(|| {
        AwsError::bad(
            "MissingParameter",
            format!("The request must contain the parameter {name}"),
        )
    })
}

/// `[\w+=,.@-]+`, 1-`max` characters (user, group and policy names).
fn name(p: &Params, param: &str, max: usize) -> Result<String, AwsError> {
    let v = required(p, param)?;
    let field = lower_first(param);
    if v.is_empty() || v.len() > max {
        return Err(validation(
            v,
            &field,
            &format!(
                "Member must have length less than or equal to {max} and greater than or equal to 1"
            ),
        ));
    }
    if !v
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"_+=,.@-".contains(&b))
    {
        return Err(validation(
            v,
            &field,
            "Member must satisfy regular expression pattern: [\\w+=,.@-]+",
        ));
    }
    Ok(v.to_string())
}

fn lower_first(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_lowercase().chain(c).collect(),
        None => String::new(),
    }
}

/// `/` or `/.../` of printable ASCII, at most 512 characters.
fn path(p: &Params, param: &str, default: &str) -> Result<String, AwsError> {
    let Some(v) = p.get(param) else {
        return Ok(default.to_string());
    };
    let ok = v == "/"
        || (v.len() <= 512
            && v.len() >= 2
            && v.starts_with('/')
            && v.ends_with('/')
            && v.bytes().all(|b| (0x21..=0x7e).contains(&b)));
    if ok {
        Ok(v.clone())
    } else {
        Err(validation(
            v,
            &lower_first(param),
            "Member must satisfy regular expression pattern: (\\u002F)|(\\u002F[\\u0021-\\u007E]+\\u002F)",
        ))
    }
}

static TAG_TEXT: LazyLock<regex::Regex> =
    LazyLock::new(|| regex::Regex::new(r"^[\p{L}\p{Z}\p{N}_.:/=+\-@]*$").expect("static regex"));

/// `Tags.member.N.Key` / `.Value`, N = 1, 2, ...
fn tags(p: &Params) -> Result<Vec<(String, String)>, AwsError> {
    let mut out: Vec<(String, String)> = Vec::new();
    for n in 1.. {
        let Some(key) = p.get(&format!("Tags.member.{n}.Key")) else {
            break;
        };
        let value = p
            .get(&format!("Tags.member.{n}.Value"))
            .cloned()
            .unwrap_or_default();
        if key.is_empty() || key.chars().count() > 128 || !TAG_TEXT.is_match(key) {
            return Err(validation(
                key,
                &format!("tags.{n}.member.key"),
                "Member must satisfy regular expression pattern: [\\p{L}\\p{Z}\\p{N}_.:/=+\\-@]+ and have length 1-128",
            ));
        }
        if value.chars().count() > 256 || !TAG_TEXT.is_match(&value) {
            return Err(validation(
                &value,
                &format!("tags.{n}.member.value"),
                "Member must satisfy regular expression pattern: [\\p{L}\\p{Z}\\p{N}_.:/=+\\-@]* and have length 0-256",
            ));
        }
        if out.iter().any(|(k, _)| k.eq_ignore_ascii_case(key)) {
            return Err(AwsError::bad(
                "InvalidInput",
                "Duplicate tag keys found. Please note that Tag keys are case insensitive.",
            ));
        }
        out.push((key.clone(), value));
    }
    Ok(out)
}

fn max_items(p: &Params) -> Result<usize, AwsError> {
    match p.get("MaxItems") {
        None => Ok(100),
        Some(v) => match v.parse::<i64>() {
            Ok(n) if (1..=1000).contains(&n) => Ok(n as usize),
            _ => Err(validation(
                v,
                "maxItems",
                "Member must have value less than or equal to 1000 and greater than or equal to 1",
            )),
        },
    }
}

/// One page of `items` (sorted by key), from the opaque `Marker`: the hex of the next key.
fn page<'a, T>(
    items: &'a BTreeMap<String, T>,
    p: &Params,
    keep: impl Fn(&T) -> bool,
) -> Result<(Vec<&'a T>, Option<String>), AwsError> {
    let max = max_items(p)?;
    let from = match p.get("Marker") {
        None => None,
        Some(m) => Some(
            hex::decode(m)
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                .ok_or_else(|| validation(m, "marker", "Marker is not one this service issued"))?,
        ),
    };
    let mut it = items
        .iter()
        .filter(|(k, _)| from.as_ref().is_none_or(|f| *k >= f))
        .filter(|(_, v)| keep(v));
    let page: Vec<&T> = it.by_ref().take(max).map(|(_, v)| v).collect();
    let next = it.next().map(|(k, _)| hex::encode(k));
    Ok((page, next))
}

fn paged_xml(list: &str, members: Vec<String>, next: Option<String>) -> String {
    let members: String = members
        .into_iter()
        .map(|m| format!("<member>{m}</member>"))
        .collect();
    let more = match next {
        Some(m) => format!("<IsTruncated>true</IsTruncated>{}", el("Marker", &m)),
        None => "<IsTruncated>false</IsTruncated>".into(),
    };
    format!("<{list}>{members}</{list}>{more}")
}

// ---------------------------------------------------------------------------------------
// Shapes
// ---------------------------------------------------------------------------------------

fn user_xml(u: &IamUser, with_tags: bool) -> String {
    let mut x = format!(
        "{}{}{}{}{}",
        el("Path", &u.path),
        el("UserName", &u.user_name),
        el("UserId", &u.user_id),
        el("Arn", &u.arn),
        el("CreateDate", &iso8601(u.created))
    );
    if with_tags && !u.tags.is_empty() {
        x.push_str(&tags_xml(&u.tags));
    }
    x
}

fn tags_xml(tags: &[(String, String)]) -> String {
    let members: String = tags
        .iter()
        .map(|(k, v)| format!("<member>{}{}</member>", el("Key", k), el("Value", v)))
        .collect();
    format!("<Tags>{members}</Tags>")
}

fn group_xml(g: &IamGroup) -> String {
    format!(
        "{}{}{}{}{}",
        el("Path", &g.path),
        el("GroupName", &g.group_name),
        el("GroupId", &g.group_id),
        el("Arn", &g.arn),
        el("CreateDate", &iso8601(g.created))
    )
}

fn no_such_user(name: &str) -> AwsError {
    AwsError::new(
        StatusCode::NOT_FOUND,
        "NoSuchEntity",
        format!("The user with name {name} cannot be found."),
    )
}

fn no_such_group(name: &str) -> AwsError {
    AwsError::new(
        StatusCode::NOT_FOUND,
        "NoSuchEntity",
        format!("The group with name {name} cannot be found."),
    )
}

fn conflict(code: &str, message: impl Into<String>) -> AwsError {
    AwsError::new(StatusCode::CONFLICT, code, message)
}

/// The group `GroupName` names.
fn find_group<'a>(iam: &'a Iam, p: &Params) -> Result<&'a IamGroup, AwsError> {
    let group = name(p, "GroupName", 128)?;
    iam.groups
        .get(&group.to_lowercase())
        .ok_or_else(|| no_such_group(&group))
}

/// A user's name as stored, from its lowercase key.
fn stored_name(iam: &Iam, key: &str) -> Result<String, AwsError> {
    iam.users
        .get(key)
        .map(|u| u.user_name.clone())
        .ok_or_else(|| no_such_user(key))
}

// ---------------------------------------------------------------------------------------
// Actions
// ---------------------------------------------------------------------------------------

/// Run one IAM action; Ok(Some(xml)) is the inside of `<{Action}Result>`, Ok(None) an
/// action without a result.
pub(crate) fn handle(
    inner: &Inner,
    caller: &Caller,
    action: &str,
    p: &Params,
) -> Result<Option<String>, AwsError> {
    let now = Instant::now();
    let visible_from = inner.visible_from();
    let mut guard = inner.lock();
    let a: &mut Account = &mut guard;
    // The user an action names (`UserName`, else the caller), as writes see it.
    let user_key = |p: &Params| -> Result<String, AwsError> {
        match p.get("UserName") {
            Some(_) => Ok(name(p, "UserName", 64)?.to_lowercase()),
            None => Ok(caller.user.to_lowercase()),
        }
    };
    match action {
        "CreateUser" => {
            let user = name(p, "UserName", 64)?;
            let path = path(p, "Path", "/")?;
            let tags = tags(p)?;
            if tags.len() > 50 {
                return Err(conflict(
                    "LimitExceeded",
                    "Cannot exceed quota for TagsPerUser: 50",
                ));
            }
            if let Some(why) = a.rejected.get(&user.to_lowercase()) {
                return Err(AwsError::bad("InvalidInput", why.clone()));
            }
            if a.iam.users.contains_key(&user.to_lowercase()) {
                return Err(conflict(
                    "EntityAlreadyExists",
                    format!("User with name {user} already exists."),
                ));
            }
            new_user(a, &user, &path, tags, visible_from, &inner.opts);
            let u = a
                .iam
                .users
                .get(&user.to_lowercase())
                .ok_or_else(|| no_such_user(&user))?;
            Ok(Some(format!("<User>{}</User>", user_xml(u, true))))
        }
        "GetUser" => {
            let key = user_key(p)?;
            let is_caller = key == caller.user.to_lowercase();
            match a.iam.users.get(&key) {
                Some(u) if is_caller || u.visible_at <= now => {
                    Ok(Some(format!("<User>{}</User>", user_xml(u, true))))
                }
                _ => Err(no_such_user(p.get("UserName").unwrap_or(&caller.user))),
            }
        }
        "ListUsers" => {
            let prefix = path(p, "PathPrefix", "/")?;
            let (users, next) = page(&a.iam.users, p, |u| {
                u.visible_at <= now && u.path.starts_with(&prefix)
            })?;
            let members = users.iter().map(|u| user_xml(u, false)).collect();
            Ok(Some(paged_xml("Users", members, next)))
        }
        "UpdateUser" => {
            let key = user_key(p)?;
            if !a.iam.users.contains_key(&key) {
                return Err(no_such_user(p.get("UserName").unwrap_or(&caller.user)));
            }
            let new_path = match p.get("NewPath") {
                Some(_) => Some(path(p, "NewPath", "/")?),
                None => None,
            };
            let new_name = match p.get("NewUserName") {
                Some(_) => Some(name(p, "NewUserName", 64)?),
                None => None,
            };
            if let Some(n) = &new_name
                && n.to_lowercase() != key
                && a.iam.users.contains_key(&n.to_lowercase())
            {
                return Err(conflict(
                    "EntityAlreadyExists",
                    format!("User with name {n} already exists."),
                ));
            }
            let account = inner.opts.account_id.clone();
            let Some(mut u) = a.iam.users.remove(&key) else {
                return Err(no_such_user(&key));
            };
            let old_name = u.user_name.clone();
            if let Some(pth) = new_path {
                u.path = pth;
            }
            if let Some(n) = new_name {
                u.user_name = n;
            }
            u.arn = user_arn(&account, &u.path, &u.user_name);
            let renamed = u.user_name.clone();
            a.iam.users.insert(renamed.to_lowercase(), u);
            if renamed != old_name {
                for g in a.iam.groups.values_mut() {
                    if let Some(at) = g.members.remove(&old_name) {
                        g.members.insert(renamed.clone(), at);
                    }
                }
                for k in a.keys.values_mut() {
                    if k.user == old_name {
                        k.user = renamed.clone();
                    }
                }
            }
            Ok(None)
        }
        "DeleteUser" => {
            let key = user_key(p)?;
            let Some(u) = a.iam.users.get(&key) else {
                return Err(no_such_user(&key));
            };
            let user = u.user_name.clone();
            let has_keys = a.keys.values().any(|k| k.user == user);
            let in_groups = a.iam.groups.values().any(|g| g.members.contains_key(&user));
            if has_keys || u.login_profile || in_groups {
                return Err(conflict(
                    "DeleteConflict",
                    "Cannot delete entity, must remove access keys, login profile and group memberships first.",
                ));
            }
            a.iam.users.remove(&key);
            Ok(None)
        }
        "TagUser" => {
            let key = user_key(p)?;
            let new = tags(p)?;
            let Some(u) = a.iam.users.get_mut(&key) else {
                return Err(no_such_user(&key));
            };
            let mut merged = u.tags.clone();
            for (k, v) in new {
                match merged.iter_mut().find(|(x, _)| x.eq_ignore_ascii_case(&k)) {
                    Some(slot) => slot.1 = v,
                    None => merged.push((k, v)),
                }
            }
            if merged.len() > 50 {
                return Err(conflict(
                    "LimitExceeded",
                    "Cannot exceed quota for TagsPerUser: 50",
                ));
            }
            u.tags = merged;
            Ok(None)
        }
        "UntagUser" => {
            let key = user_key(p)?;
            let Some(u) = a.iam.users.get_mut(&key) else {
                return Err(no_such_user(&key));
            };
            let gone: Vec<String> = (1..)
                .map_while(|n| p.get(&format!("TagKeys.member.{n}")).cloned())
                .collect();
            u.tags
                .retain(|(k, _)| !gone.iter().any(|g| g.eq_ignore_ascii_case(k)));
            Ok(None)
        }
        "ListUserTags" => {
            let key = user_key(p)?;
            let u = a.iam.users.get(&key).ok_or_else(|| no_such_user(&key))?;
            Ok(Some(format!(
                "{}<IsTruncated>false</IsTruncated>",
                tags_xml(&u.tags)
            )))
        }
        "CreateGroup" => {
            let group = name(p, "GroupName", 128)?;
            let path = path(p, "Path", "/")?;
            if a.iam.groups.contains_key(&group.to_lowercase()) {
                return Err(conflict(
                    "EntityAlreadyExists",
                    format!("Group with name {group} already exists."),
                ));
            }
            new_group(a, &inner.opts.account_id, &group, &path);
            let g = a
                .iam
                .groups
                .get(&group.to_lowercase())
                .ok_or_else(|| no_such_group(&group))?;
            Ok(Some(format!("<Group>{}</Group>", group_xml(g))))
        }
        "GetGroup" => {
            let g = find_group(&a.iam, p)?;
            let members: BTreeMap<String, &IamUser> = g
                .members
                .iter()
                .filter(|(_, at)| **at <= now)
                .filter_map(|(n, _)| a.iam.users.get(&n.to_lowercase()))
                .filter(|u| u.visible_at <= now)
                .map(|u| (u.user_name.to_lowercase(), u))
                .collect();
            let (users, next) = page(&members, p, |_| true)?;
            let xml = users.iter().map(|u| user_xml(u, false)).collect();
            Ok(Some(format!(
                "<Group>{}</Group>{}",
                group_xml(g),
                paged_xml("Users", xml, next)
            )))
        }
        "ListGroups" => {
            let prefix = path(p, "PathPrefix", "/")?;
            let (groups, next) = page(&a.iam.groups, p, |g| g.path.starts_with(&prefix))?;
            let xml = groups.iter().map(|g| group_xml(g)).collect();
            Ok(Some(paged_xml("Groups", xml, next)))
        }
        "DeleteGroup" => {
            let g = find_group(&a.iam, p)?;
            if !g.members.is_empty() {
                return Err(conflict(
                    "DeleteConflict",
                    "Cannot delete entity, must remove users from group first.",
                ));
            }
            let key = g.group_name.to_lowercase();
            a.iam.groups.remove(&key);
            Ok(None)
        }
        "AddUserToGroup" | "RemoveUserFromGroup" => {
            let group = name(p, "GroupName", 128)?;
            let user = name(p, "UserName", 64)?;
            let stored = stored_name(&a.iam, &user.to_lowercase())?;
            let g = a
                .iam
                .groups
                .get_mut(&group.to_lowercase())
                .ok_or_else(|| no_such_group(&group))?;
            let gname = g.group_name.clone();
            if action == "AddUserToGroup" {
                if !g.members.contains_key(&stored) {
                    g.members.insert(stored.clone(), visible_from);
                    a.iam.counts.added(&gname, &stored);
                }
            } else if g.members.remove(&stored).is_none() {
                return Err(AwsError::new(
                    StatusCode::NOT_FOUND,
                    "NoSuchEntity",
                    format!("The user with name {stored} is not a member of the group {gname}."),
                ));
            }
            Ok(None)
        }
        "ListGroupsForUser" => {
            let user = name(p, "UserName", 64)?;
            let u = a
                .iam
                .users
                .get(&user.to_lowercase())
                .filter(|u| u.visible_at <= now)
                .ok_or_else(|| no_such_user(&user))?;
            let stored = u.user_name.clone();
            let (groups, next) = page(&a.iam.groups, p, |g| {
                g.members.get(&stored).is_some_and(|at| *at <= now)
            })?;
            let xml = groups.iter().map(|g| group_xml(g)).collect();
            Ok(Some(paged_xml("Groups", xml, next)))
        }
        "CreateAccessKey" => {
            let key = user_key(p)?;
            let u = a.iam.users.get(&key).ok_or_else(|| no_such_user(&key))?;
            let user = u.user_name.clone();
            if a.keys.values().filter(|k| k.user == user).count() >= 2 {
                return Err(conflict(
                    "LimitExceeded",
                    "Cannot exceed quota for AccessKeysPerUser: 2",
                ));
            }
            let (id, secret) = create_access_key(a, &user).ok_or_else(|| no_such_user(&user))?;
            Ok(Some(format!(
                "<AccessKey>{}{}<Status>Active</Status>{}{}</AccessKey>",
                el("UserName", &user),
                el("AccessKeyId", &id),
                el("SecretAccessKey", &secret),
                el("CreateDate", &iso8601(Utc::now()))
            )))
        }
        "ListAccessKeys" => {
            let key = user_key(p)?;
            let user = stored_name(&a.iam, &key)?;
            let keys: BTreeMap<String, (String, bool, DateTime<Utc>)> = a
                .keys
                .iter()
                .filter(|(_, k)| k.user == user)
                .map(|(id, k)| (id.clone(), (id.clone(), k.active, k.created)))
                .collect();
            let (keys, next) = page(&keys, p, |_| true)?;
            let xml = keys
                .iter()
                .map(|(id, active, created)| {
                    format!(
                        "{}{}{}{}",
                        el("UserName", &user),
                        el("AccessKeyId", id),
                        el("Status", if *active { "Active" } else { "Inactive" }),
                        el("CreateDate", &iso8601(*created))
                    )
                })
                .collect();
            Ok(Some(paged_xml("AccessKeyMetadata", xml, next)))
        }
        "UpdateAccessKey" | "DeleteAccessKey" => {
            let key = user_key(p)?;
            let user = stored_name(&a.iam, &key)?;
            let id = required(p, "AccessKeyId")?.to_string();
            let status = if action == "UpdateAccessKey" {
                match required(p, "Status")? {
                    "Active" => Some(true),
                    "Inactive" => Some(false),
                    other => {
                        return Err(validation(
                            other,
                            "status",
                            "Member must satisfy enum value set: [Active, Inactive]",
                        ));
                    }
                }
            } else {
                None
            };
            let missing = || {
                AwsError::new(
                    StatusCode::NOT_FOUND,
                    "NoSuchEntity",
                    format!("The Access Key with id {id} cannot be found."),
                )
            };
            match a.keys.get_mut(&id) {
                Some(k) if k.user == user => match status {
                    Some(active) => k.active = active,
                    None => {
                        a.keys.remove(&id);
                    }
                },
                _ => return Err(missing()),
            }
            Ok(None)
        }
        "CreateLoginProfile" | "GetLoginProfile" | "DeleteLoginProfile" => {
            let key = user_key(p)?;
            let u = a
                .iam
                .users
                .get_mut(&key)
                .ok_or_else(|| no_such_user(&key))?;
            let user = u.user_name.clone();
            let missing = || {
                AwsError::new(
                    StatusCode::NOT_FOUND,
                    "NoSuchEntity",
                    format!("Login Profile for User {user} cannot be found."),
                )
            };
            match action {
                "CreateLoginProfile" => {
                    let pw = required(p, "Password")?;
                    if pw.len() < 6 {
                        return Err(AwsError::bad(
                            "PasswordPolicyViolation",
                            "Password should have a minimum length of 6",
                        ));
                    }
                    if u.login_profile {
                        return Err(conflict(
                            "EntityAlreadyExists",
                            format!("Login Profile for user {user} already exists."),
                        ));
                    }
                    u.login_profile = true;
                }
                "GetLoginProfile" if !u.login_profile => return Err(missing()),
                "DeleteLoginProfile" if !u.login_profile => return Err(missing()),
                "DeleteLoginProfile" => {
                    u.login_profile = false;
                    return Ok(None);
                }
                _ => {}
            }
            Ok(Some(format!(
                "<LoginProfile>{}{}<PasswordResetRequired>false</PasswordResetRequired></LoginProfile>",
                el("UserName", &user),
                el("CreateDate", &iso8601(u.created))
            )))
        }
        other => Err(AwsError::bad(
            "InvalidAction",
            format!("Could not find operation {other} for version 2010-05-08"),
        )),
    }
}

/// Every action [`handle`] answers (for the conformance check against service-2.json).
pub const ACTIONS: &[&str] = &[
    "CreateUser",
    "GetUser",
    "ListUsers",
    "UpdateUser",
    "DeleteUser",
    "TagUser",
    "UntagUser",
    "ListUserTags",
    "CreateGroup",
    "GetGroup",
    "ListGroups",
    "DeleteGroup",
    "AddUserToGroup",
    "RemoveUserFromGroup",
    "ListGroupsForUser",
    "CreateAccessKey",
    "ListAccessKeys",
    "UpdateAccessKey",
    "DeleteAccessKey",
    "CreateLoginProfile",
    "GetLoginProfile",
    "DeleteLoginProfile",
];

/// Every error code IAM actions (and the account's authentication, STS, the faults) can
/// answer with, and its HTTP status.
pub const ERROR_CODES: &[(&str, u16)] = &[
    ("EntityAlreadyExists", 409),
    ("NoSuchEntity", 404),
    ("InvalidInput", 400),
    ("LimitExceeded", 409),
    ("DeleteConflict", 409),
    ("PasswordPolicyViolation", 400),
    ("ValidationError", 400),
    ("MissingParameter", 400),
    ("InvalidAction", 400),
    ("MissingAction", 400),
    ("Throttling", 400),
    ("ServiceUnavailable", 503),
    ("MissingAuthenticationToken", 403),
    ("IncompleteSignature", 400),
    ("InvalidClientTokenId", 403),
    ("SignatureDoesNotMatch", 403),
];

#[cfg(test)]
mod tests;
