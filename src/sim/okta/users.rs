//! Okta's users routes and lifecycle operations.

use super::*;

// ---------------------------------------------------------------------------------------
// Users
// ---------------------------------------------------------------------------------------

pub(super) fn parse_json_object(body: &Bytes) -> Result<Map<String, Value>, Response> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(m)) => Ok(m),
        _ => Err(bad_body()),
    }
}

pub(super) fn query_flag(q: &HashMap<String, String>, name: &str, default: bool) -> bool {
    match q.get(name).map(|v| v.to_ascii_lowercase()) {
        Some(v) if v == "false" => false,
        Some(v) if v == "true" => true,
        _ => default,
    }
}

/// Validate profile fields the way Okta's base user schema does.
pub(super) fn profile_problems(p: &Map<String, Value>, creating: bool) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let str_field = |k: &str| p.get(k).and_then(Value::as_str);
    for (field, min, max) in [
        ("login", 5usize, 100usize),
        ("email", 5, 100),
        ("firstName", 1, 50),
        ("lastName", 1, 50),
    ] {
        match p.get(field) {
            None if creating => out.push((
                field.to_string(),
                format!("{field}: The field cannot be left blank"),
            )),
            None => {}
            Some(Value::Null) if field == "login" || field == "email" || creating => out.push((
                field.to_string(),
                format!("{field}: The field cannot be left blank"),
            )),
            Some(Value::Null) => {}
            Some(Value::String(s)) => {
                let n = s.chars().count();
                if n == 0 {
                    out.push((
                        field.to_string(),
                        format!("{field}: The field cannot be left blank"),
                    ));
                } else if n < min || n > max {
                    out.push((
                        field.to_string(),
                        format!("{field}: The field must be between {min} and {max} characters"),
                    ));
                }
            }
            Some(_) => out.push((
                field.to_string(),
                format!("{field}: The field must be a string"),
            )),
        }
    }
    for field in ["login", "email"] {
        if let Some(s) = str_field(field)
            && !s.is_empty()
            && !looks_like_email(s)
        {
            let why = if field == "login" {
                "login: Username must be in the form of an email address"
            } else {
                "email: Does not match required pattern"
            };
            out.push((field.to_string(), why.to_string()));
        }
    }
    out
}

pub(super) fn looks_like_email(s: &str) -> bool {
    match s.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
                && !s.chars().any(char::is_whitespace)
        }
        None => false,
    }
}

pub(super) fn problems_response(problems: Vec<(String, String)>) -> Option<Response> {
    if problems.is_empty() {
        return None;
    }
    let fields: Vec<String> = problems
        .iter()
        .map(|(f, _)| f.clone())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let causes: Vec<String> = problems.into_iter().map(|(_, c)| c).collect();
    Some(validation_failed(&fields.join(", "), &causes))
}

pub(super) async fn create_user(
    State(inner): State<Arc<Inner>>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let body = match parse_json_object(&body) {
        Ok(b) => b,
        Err(r) => return r,
    };
    let Some(Value::Object(profile)) = body.get("profile").cloned() else {
        return validation_failed(
            "profile",
            &["profile: The field cannot be left blank".into()],
        );
    };
    if let Some(r) = problems_response(profile_problems(&profile, true)) {
        return r;
    }
    let has_password = match password_given(&body) {
        Ok(p) => p,
        Err(r) => return r,
    };
    let login = profile
        .get("login")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let activate = query_flag(&q, "activate", true);
    let visible_at = Instant::now() + inner.faults.visibility_delay();
    let mut s = inner.lock();
    if find_by_login(&s, &login).is_some() {
        return already_exists("login");
    }
    let mut group_ids = Vec::new();
    if let Some(ids) = body.get("groupIds") {
        let Some(ids) = ids.as_array() else {
            return bad_body();
        };
        for id in ids {
            match id.as_str().and_then(|g| s.groups.get(g)) {
                Some(g) if g.kind == "OKTA_GROUP" => group_ids.push(g.id.clone()),
                _ => {
                    return validation_failed(
                        "groupIds",
                        &[format!(
                            "groupIds: Group not found or not an OKTA_GROUP: {id}"
                        )],
                    );
                }
            }
        }
    }
    // Okta's creation table: not activated, STAGED; activated with a password, ACTIVE;
    // activated without one, PROVISIONED until the user finishes the welcome flow.
    let status = match (activate, has_password) {
        (false, _) => "STAGED",
        (true, true) => "ACTIVE",
        (true, false) => "PROVISIONED",
    };
    let id = new_user(&mut s, profile, status, has_password, visible_at);
    s.counts.created(&login);
    for g in group_ids {
        add_membership(&mut s, &g, &id, visible_at);
    }
    let u = s.users.get(&id).cloned();
    drop(s);
    match u {
        Some(u) => json_response(StatusCode::OK, user_json(&u, &base(&headers))),
        None => not_found(&id, "User"),
    }
}

/// Whether the create body sets a password (`credentials.password.value`), checked against
/// Okta's default password policy. The value is not kept.
pub(super) fn password_given(body: &Map<String, Value>) -> Result<bool, Response> {
    let Some(password) = body.get("credentials").and_then(|c| c.get("password")) else {
        return Ok(false);
    };
    match password.get("value") {
        None | Some(Value::Null) => Ok(false),
        Some(Value::String(v)) if v.chars().count() >= 8 => Ok(true),
        Some(Value::String(_)) => Err(validation_failed(
            "password",
            &["password: Password requirements were not met. Password requirements: at least 8 characters.".into()],
        )),
        Some(_) => Err(bad_body()),
    }
}

/// Resolve an id, a login or `me`, among the users visible to reads.
pub(super) fn lookup_visible(
    s: &Org,
    id_or_login: &str,
    caller: Option<&Caller>,
) -> Option<SimUser> {
    let now = Instant::now();
    let id = if id_or_login == "me" {
        match caller {
            Some(Caller::Admin) => Some(s.admin.clone()),
            _ => None,
        }
    } else if s.users.contains_key(id_or_login) {
        Some(id_or_login.to_string())
    } else {
        find_by_login(s, id_or_login)
    }?;
    s.users.get(&id).filter(|u| u.visible_at <= now).cloned()
}

/// Resolve an id or login among all users (writes see the true state).
pub(super) fn lookup_any(s: &Org, id_or_login: &str) -> Option<String> {
    if s.users.contains_key(id_or_login) {
        Some(id_or_login.to_string())
    } else {
        find_by_login(s, id_or_login)
    }
}

pub(super) async fn get_user(
    State(inner): State<Arc<Inner>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    caller: Option<axum::Extension<Caller>>,
) -> Response {
    let caller = caller.map(|c| c.0);
    let u = lookup_visible(&inner.lock(), &id, caller.as_ref());
    match u {
        Some(u) => json_response(StatusCode::OK, user_json(&u, &base(&headers))),
        None => not_found(&id, "User"),
    }
}

pub(super) async fn update_user(
    State(inner): State<Arc<Inner>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let body = match parse_json_object(&body) {
        Ok(b) => b,
        Err(r) => return r,
    };
    let changes = match body.get("profile") {
        None => Map::new(),
        Some(Value::Object(p)) => p.clone(),
        Some(_) => return bad_body(),
    };
    if let Some(r) = problems_response(profile_problems(&changes, false)) {
        return r;
    }
    let mut s = inner.lock();
    let Some(uid) = lookup_any(&s, &id) else {
        return not_found(&id, "User");
    };
    if let Some(new_login) = changes.get("login").and_then(Value::as_str)
        && let Some(other) = find_by_login(&s, new_login)
        && other != uid
    {
        return already_exists("login");
    }
    let Some(u) = s.users.get_mut(&uid) else {
        return not_found(&id, "User");
    };
    for (k, v) in changes {
        if v.is_null() {
            u.profile.remove(&k);
        } else {
            u.profile.insert(k, v);
        }
    }
    u.last_updated = Utc::now();
    let u = u.clone();
    drop(s);
    json_response(StatusCode::OK, user_json(&u, &base(&headers)))
}

/// `DELETE /api/v1/users/{id}`: a deprovisioned user is deleted for good (with their
/// memberships); anyone else is deactivated first, as Okta does.
pub(super) async fn delete_user(
    State(inner): State<Arc<Inner>>,
    Path(id): Path<String>,
) -> Response {
    let mut s = inner.lock();
    let Some(uid) = lookup_any(&s, &id) else {
        return not_found(&id, "User");
    };
    let Some(u) = s.users.get_mut(&uid) else {
        return not_found(&id, "User");
    };
    if u.status != "DEPROVISIONED" {
        u.status = "DEPROVISIONED".into();
        u.status_changed = Some(Utc::now());
        u.last_updated = Utc::now();
        return empty(StatusCode::NO_CONTENT);
    }
    s.users.remove(&uid);
    s.memberships.retain(|(_, member), _| *member != uid);
    empty(StatusCode::NO_CONTENT)
}

pub(super) async fn lifecycle(
    State(inner): State<Arc<Inner>>,
    Path((id, op)): Path<(String, String)>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let mut s = inner.lock();
    let Some(uid) = lookup_any(&s, &id) else {
        return not_found(&id, "User");
    };
    let Some(u) = s.users.get_mut(&uid) else {
        return not_found(&id, "User");
    };
    let now = Utc::now();
    let current = u.status.clone();
    let token_body = |send_email: bool| {
        if send_email {
            json_response(StatusCode::OK, json!({}))
        } else {
            let token = random_alnum(20);
            json_response(
                StatusCode::OK,
                json!({
                    "activationToken": token,
                    "activationUrl": format!("{}/welcome/{token}", base(&headers)),
                }),
            )
        }
    };
    let (next, resp) = match op.as_str() {
        // A staged user with a password is active at once; without one (and anyone coming
        // back from DEPROVISIONED) they must finish the welcome flow: PROVISIONED.
        "activate" => match current.as_str() {
            "STAGED" if u.has_password => ("ACTIVE", token_body(query_flag(&q, "sendEmail", true))),
            "STAGED" | "DEPROVISIONED" => {
                ("PROVISIONED", token_body(query_flag(&q, "sendEmail", true)))
            }
            "SUSPENDED" => return status_forbids(),
            _ => return already_activated(),
        },
        "deactivate" => match current.as_str() {
            "DEPROVISIONED" => return status_forbids(),
            _ => ("DEPROVISIONED", empty(StatusCode::OK)),
        },
        "reactivate" => match current.as_str() {
            "PROVISIONED" | "RECOVERY" => (
                "PROVISIONED",
                token_body(query_flag(&q, "sendEmail", false)),
            ),
            _ => return status_forbids(),
        },
        "suspend" => match current.as_str() {
            "ACTIVE" => ("SUSPENDED", empty(StatusCode::OK)),
            _ => {
                return validation_failed(
                    "status",
                    &["status: Cannot suspend a user that is not active".into()],
                );
            }
        },
        "unsuspend" => match current.as_str() {
            "SUSPENDED" => ("ACTIVE", empty(StatusCode::OK)),
            _ => {
                return validation_failed(
                    "status",
                    &["status: Cannot unsuspend a user that is not suspended".into()],
                );
            }
        },
        _ => return not_found(&op, "Lifecycle operation"),
    };
    u.status = next.to_string();
    u.status_changed = Some(now);
    u.last_updated = now;
    if next == "DEPROVISIONED" {
        // Deactivation ends every credential: back, they set up again.
        u.has_password = false;
    }
    if (next == "ACTIVE" || next == "PROVISIONED") && u.activated.is_none() {
        u.activated = Some(now);
    }
    resp
}

/// `after`-cursor paging over items sorted by id. Returns the page and the next cursor.
/// One page of users already in id order, starting after the cursor: the first `limit`
/// rendered, and the last one's id as the next cursor when more follow (as [`page`]).
pub(super) fn lazy_page<'a>(
    mut rows: impl Iterator<Item = &'a SimUser>,
    limit: usize,
    base: &str,
) -> (Vec<Value>, Option<String>) {
    let mut items = Vec::with_capacity(limit.min(1000));
    let mut last: Option<&SimUser> = None;
    for u in rows.by_ref().take(limit) {
        items.push(user_json(u, base));
        last = Some(u);
    }
    let next = match (last, rows.next()) {
        (Some(l), Some(_)) => Some(l.id.clone()),
        _ => None,
    };
    (items, next)
}

pub(super) fn page<T: Clone>(
    items: &[(String, T)],
    after: Option<&str>,
    limit: usize,
) -> (Vec<T>, Option<String>) {
    let start = match after {
        Some(a) => items.partition_point(|(id, _)| id.as_str() <= a),
        None => 0,
    };
    let end = (start + limit).min(items.len());
    let page: Vec<T> = items[start..end].iter().map(|(_, t)| t.clone()).collect();
    let next = (end < items.len() && end > start).then(|| items[end - 1].0.clone());
    (page, next)
}

/// The Link header: `self`, and `next` carrying every original parameter with a new `after`.
pub(super) fn link_header(
    base: &str,
    path: &str,
    q: &HashMap<String, String>,
    next: Option<&str>,
) -> String {
    let mut keys: Vec<&String> = q.keys().collect();
    keys.sort();
    let encode = |after: Option<&str>| {
        let mut ser = url::form_urlencoded::Serializer::new(String::new());
        for k in &keys {
            if k.as_str() != "after" {
                ser.append_pair(k, &q[*k]);
            }
        }
        if let Some(a) = after {
            ser.append_pair("after", a);
        }
        let qs = ser.finish();
        if qs.is_empty() {
            format!("{base}{path}")
        } else {
            format!("{base}{path}?{qs}")
        }
    };
    let mut out = format!(
        "<{}>; rel=\"self\"",
        encode(q.get("after").map(String::as_str))
    );
    if let Some(n) = next {
        out.push_str(&format!(", <{}>; rel=\"next\"", encode(Some(n))));
    }
    out
}

pub(super) fn list_response(items: Vec<Value>, link: String) -> Response {
    let mut r = json_response(StatusCode::OK, Value::Array(items));
    if let Ok(v) = HeaderValue::from_str(&link) {
        r.headers_mut().insert("link", v);
    }
    r
}

pub(super) fn limit_param(
    q: &HashMap<String, String>,
    default: usize,
    max: usize,
) -> Result<usize, Response> {
    match q.get("limit") {
        None => Ok(default),
        Some(v) => match v.trim().parse::<i64>() {
            Ok(n) if n >= 1 => Ok((n as usize).min(max)),
            _ => Err(validation_failed(
                "limit",
                &["limit: The limit must be a positive integer".into()],
            )),
        },
    }
}

pub(super) fn invalid_search() -> Response {
    okta_error(
        StatusCode::BAD_REQUEST,
        "E0000031",
        "Invalid search criteria.",
        &[],
    )
}

pub(super) async fn list_users(
    State(inner): State<Arc<Inner>>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let base = base(&headers);
    let expr = match (q.get("search"), q.get("filter")) {
        (Some(e), _) => match filter::parse(e) {
            Ok(x) => Some((x, true)),
            Err(_) => return invalid_search(),
        },
        (None, Some(e)) => match filter::parse(e) {
            Ok(x) => Some((x, false)),
            Err(_) => return invalid_search(),
        },
        (None, None) => None,
    };
    let now = Instant::now();
    let s = inner.lock();
    let visible = s.users.values().filter(|u| u.visible_at <= now);
    if let Some(term) = q.get("q") {
        // A startsWith match on firstName, lastName or email; no paging; no DEPROVISIONED.
        let limit = match limit_param(&q, 10, 200) {
            Ok(l) => l,
            Err(r) => return r,
        };
        let t = term.to_lowercase();
        let items: Vec<Value> = visible
            .filter(|u| u.status != "DEPROVISIONED")
            .filter(|u| {
                ["firstName", "lastName", "email"].iter().any(|f| {
                    u.profile
                        .get(*f)
                        .and_then(Value::as_str)
                        .is_some_and(|v| v.to_lowercase().starts_with(&t))
                })
            })
            .take(limit)
            .map(|u| user_json(u, &base))
            .collect();
        return list_response(items, link_header(&base, "/api/v1/users", &q, None));
    }
    let limit = match limit_param(&q, 200, 200) {
        Ok(l) => l,
        Err(r) => return r,
    };
    drop(visible);
    // Walk the users in id order from the cursor and render only what the page needs
    // (a listing of 50,000 users stays linear, not quadratic).
    use std::ops::Bound;
    let from = q
        .get("after")
        .map_or(Bound::Unbounded, |a| Bound::Excluded(a.as_str()));
    let mut items: Vec<Value> = Vec::with_capacity(limit);
    let mut last: Option<String> = None;
    let mut more = false;
    for u in s
        .users
        .range::<str, _>((from, Bound::Unbounded))
        .map(|(_, u)| u)
        .filter(|u| u.visible_at <= now)
    {
        let json = match &expr {
            // Without search or filter, Okta omits DEPROVISIONED users.
            None if u.status == "DEPROVISIONED" => continue,
            None => None,
            Some((x, ci)) => {
                let j = user_json(u, &base);
                if !x.matches(&j, *ci) {
                    continue;
                }
                Some(j)
            }
        };
        if items.len() == limit {
            more = true;
            break;
        }
        items.push(json.unwrap_or_else(|| user_json(u, &base)));
        last = Some(u.id.clone());
    }
    drop(s);
    let next = if more { last } else { None };
    list_response(
        items,
        link_header(&base, "/api/v1/users", &q, next.as_deref()),
    )
}

pub(super) async fn user_groups(
    State(inner): State<Arc<Inner>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    caller: Option<axum::Extension<Caller>>,
) -> Response {
    let base = base(&headers);
    let caller = caller.map(|c| c.0);
    let s = inner.lock();
    let Some(u) = lookup_visible(&s, &id, caller.as_ref()) else {
        return not_found(&id, "User");
    };
    let now = Instant::now();
    let items: Vec<Value> = s
        .groups
        .values()
        .filter(|g| {
            g.id == s.everyone
                || s.memberships
                    .get(&(g.id.clone(), u.id.clone()))
                    .is_some_and(|at| *at <= now)
        })
        .map(|g| group_json(g, &base))
        .collect();
    json_response(StatusCode::OK, Value::Array(items))
}
