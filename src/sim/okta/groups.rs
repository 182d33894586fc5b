//! Okta's groups and group membership routes.

use super::*;

// ---------------------------------------------------------------------------------------
// Groups
// ---------------------------------------------------------------------------------------

pub(super) async fn list_groups(
    State(inner): State<Arc<Inner>>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let base = base(&headers);
    let s = inner.lock();
    if let Some(term) = q.get("q") {
        // A name prefix match; "paging and searching are mutually exclusive": no next link.
        let limit = match limit_param(&q, 300, 10_000) {
            Ok(l) => l,
            Err(r) => return r,
        };
        let t = term.to_lowercase();
        let items: Vec<Value> = s
            .groups
            .values()
            .filter(|g| g.name.to_lowercase().starts_with(&t))
            .take(limit)
            .map(|g| group_json(g, &base))
            .collect();
        return list_response(items, link_header(&base, "/api/v1/groups", &q, None));
    }
    let expr = match q.get("search").or(q.get("filter")) {
        Some(e) => match filter::parse(e) {
            Ok(x) => Some((x, q.contains_key("search"))),
            Err(_) => return invalid_search(),
        },
        None => None,
    };
    let limit = match limit_param(&q, 10_000, 10_000) {
        Ok(l) => l,
        Err(r) => return r,
    };
    let items: Vec<(String, Value)> = s
        .groups
        .values()
        .map(|g| (g.id.clone(), group_json(g, &base)))
        .filter(|(_, v)| expr.as_ref().is_none_or(|(x, ci)| x.matches(v, *ci)))
        .collect();
    drop(s);
    let (items, next) = page(&items, q.get("after").map(String::as_str), limit);
    list_response(
        items,
        link_header(&base, "/api/v1/groups", &q, next.as_deref()),
    )
}

pub(super) async fn create_group(
    State(inner): State<Arc<Inner>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let body = match parse_json_object(&body) {
        Ok(b) => b,
        Err(r) => return r,
    };
    let profile = body.get("profile").and_then(Value::as_object);
    let name = profile
        .and_then(|p| p.get("name"))
        .and_then(Value::as_str)
        .unwrap_or("")
        .trim()
        .to_string();
    if name.is_empty() {
        return validation_failed("name", &["name: The field cannot be left blank".into()]);
    }
    let description = profile
        .and_then(|p| p.get("description"))
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let mut s = inner.lock();
    if s.groups
        .values()
        .any(|g| g.kind == "OKTA_GROUP" && g.name.eq_ignore_ascii_case(&name))
    {
        return already_exists("name");
    }
    let id = new_group(&mut s, &name, &description, "OKTA_GROUP");
    let g = s.groups.get(&id).cloned();
    drop(s);
    match g {
        Some(g) => json_response(StatusCode::OK, group_json(&g, &base(&headers))),
        None => not_found(&id, "UserGroup"),
    }
}

pub(super) async fn group_users(
    State(inner): State<Arc<Inner>>,
    Path(gid): Path<String>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let base = base(&headers);
    let limit = match limit_param(&q, 1000, 1000) {
        Ok(l) => l,
        Err(r) => return r,
    };
    let s = inner.lock();
    if !s.groups.contains_key(&gid) {
        return not_found(&gid, "UserGroup");
    }
    let now = Instant::now();
    let everyone = gid == s.everyone;
    // Members in user id order from the cursor; only the page is rendered.
    use std::ops::Bound;
    let after = q.get("after").cloned();
    let (items, next) = if everyone {
        let from = after.as_deref().map_or(Bound::Unbounded, Bound::Excluded);
        let rows = s
            .users
            .range::<str, _>((from, Bound::Unbounded))
            .map(|(_, u)| u)
            .filter(|u| u.visible_at <= now);
        lazy_page(rows, limit, &base)
    } else {
        let from = match &after {
            Some(a) => Bound::Excluded((gid.clone(), a.clone())),
            None => Bound::Included((gid.clone(), String::new())),
        };
        let rows = s
            .memberships
            .range((from, Bound::Unbounded))
            .take_while(|((g, _), _)| *g == gid)
            .filter(|(_, at)| **at <= now)
            .filter_map(|((_, uid), _)| s.users.get(uid))
            .filter(|u| u.visible_at <= now);
        lazy_page(rows, limit, &base)
    };
    drop(s);
    list_response(
        items,
        link_header(
            &base,
            &format!("/api/v1/groups/{gid}/users"),
            &q,
            next.as_deref(),
        ),
    )
}

pub(super) fn add_membership(s: &mut Org, gid: &str, uid: &str, visible_at: Instant) {
    let key = (gid.to_string(), uid.to_string());
    if s.memberships.contains_key(&key) {
        return;
    }
    s.memberships.insert(key.clone(), visible_at);
    s.counts.added(gid, uid);
    if let Some(g) = s.groups.get_mut(gid) {
        g.last_membership_updated = Utc::now();
    }
}

pub(super) fn membership_target(s: &Org, gid: &str, uid: &str) -> Result<String, Response> {
    let Some(g) = s.groups.get(gid) else {
        return Err(not_found(gid, "UserGroup"));
    };
    let Some(uid) = lookup_any(s, uid) else {
        return Err(not_found(uid, "User"));
    };
    if g.kind != "OKTA_GROUP" {
        return Err(okta_error(
            StatusCode::FORBIDDEN,
            "E0000006",
            "You do not have permission to perform the requested action",
            &[format!(
                "Memberships of {} groups cannot be changed through the API",
                g.kind
            )],
        ));
    }
    Ok(uid)
}

pub(super) async fn add_member(
    State(inner): State<Arc<Inner>>,
    Path((gid, uid)): Path<(String, String)>,
) -> Response {
    let visible_at = Instant::now() + inner.faults.visibility_delay();
    let mut s = inner.lock();
    let uid = match membership_target(&s, &gid, &uid) {
        Ok(u) => u,
        Err(r) => return r,
    };
    add_membership(&mut s, &gid, &uid, visible_at);
    empty(StatusCode::NO_CONTENT)
}

pub(super) async fn remove_member(
    State(inner): State<Arc<Inner>>,
    Path((gid, uid)): Path<(String, String)>,
) -> Response {
    let mut s = inner.lock();
    let uid = match membership_target(&s, &gid, &uid) {
        Ok(u) => u,
        Err(r) => return r,
    };
    if s.memberships.remove(&(gid.clone(), uid)).is_some()
        && let Some(g) = s.groups.get_mut(&gid)
    {
        g.last_membership_updated = Utc::now();
    }
    empty(StatusCode::NO_CONTENT)
}
