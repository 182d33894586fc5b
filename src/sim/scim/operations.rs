//! Resources: operations, shared by the endpoints and /Bulk.

use super::*;

// ---------------------------------------------------------------------------------------
// Resources: operations (shared by the endpoints and /Bulk)
// ---------------------------------------------------------------------------------------

pub(super) fn single(
    p: &Provider,
    kind: Kind,
    id: &str,
    ctx: &Ctx<'_>,
    status: StatusCode,
) -> Result<Reply, ScimError> {
    let r = p
        .table(kind)
        .get(id)
        .ok_or_else(|| ScimError::not_found(kind, id))?;
    Ok(Reply {
        status,
        body: Some(view(p, r, &ctx.base, ctx.now)),
        etag: ctx.opts.etag.then(|| r.etag()),
        location: Some(format!("{}/{}/{}", ctx.base, kind.endpoint(), r.id)),
    })
}

pub(super) fn op_create(
    p: &mut Provider,
    kind: Kind,
    body: &Bytes,
    ctx: &Ctx<'_>,
) -> Result<Reply, ScimError> {
    let mut attrs = incoming(kind, body)?;
    check(kind, &mut attrs, ctx.opts)?;
    dedup_members(&mut attrs);
    check_against(p, kind, None, &attrs)?;
    let visible_at = ctx.now + ctx.visibility;
    let name = attrs
        .get("userName")
        .and_then(Value::as_str)
        .map(str::to_string);
    let id = insert_new(p, kind, attrs, visible_at);
    if let Some(n) = name {
        p.counts.created(&n);
    }
    let mut reply = single(p, kind, &id, ctx, StatusCode::CREATED)?;
    // The creator sees what it created, members included.
    if let Some(r) = p.table(kind).get(&id) {
        let mut shown = r.clone();
        shown.member_visible_at.clear();
        reply.body = Some(view(p, &shown, &ctx.base, ctx.now));
    }
    Ok(reply)
}

pub(super) fn op_replace(
    p: &mut Provider,
    kind: Kind,
    id: &str,
    body: &Bytes,
    headers: &HeaderMap,
    ctx: &Ctx<'_>,
) -> Result<Reply, ScimError> {
    let current = p
        .table(kind)
        .get(id)
        .ok_or_else(|| ScimError::not_found(kind, id))?;
    check_if_match(headers, current, ctx.opts.etag)?;
    let mut attrs = incoming(kind, body)?;
    check(kind, &mut attrs, ctx.opts)?;
    dedup_members(&mut attrs);
    check_against(p, kind, Some(id), &attrs)?;
    store(p, kind, id, attrs, ctx);
    single(p, kind, id, ctx, StatusCode::OK)
}

pub(super) fn op_patch(
    p: &mut Provider,
    kind: Kind,
    id: &str,
    body: &Bytes,
    headers: &HeaderMap,
    ctx: &Ctx<'_>,
) -> Result<Reply, ScimError> {
    if !ctx.opts.patch {
        return Err(ScimError::not_implemented("PATCH"));
    }
    let current = p
        .table(kind)
        .get(id)
        .ok_or_else(|| ScimError::not_found(kind, id))?;
    check_if_match(headers, current, ctx.opts.etag)?;
    let Ok(Value::Object(req)) = serde_json::from_slice::<Value>(body) else {
        return Err(ScimError::bad(
            "invalidSyntax",
            "The request body is not a JSON object",
        ));
    };
    let is_patch = req
        .get("schemas")
        .and_then(Value::as_array)
        .is_some_and(|a| {
            a.iter().any(|s| {
                s.as_str()
                    .is_some_and(|s| s.eq_ignore_ascii_case(SCHEMA_PATCH))
            })
        });
    if !is_patch {
        return Err(ScimError::bad(
            "invalidSyntax",
            format!("\"schemas\" must be [\"{SCHEMA_PATCH}\"]"),
        ));
    }
    let ops = match req.get("Operations").or_else(|| req.get("operations")) {
        Some(Value::Array(ops)) if !ops.is_empty() => ops.clone(),
        _ => {
            return Err(ScimError::bad(
                "invalidSyntax",
                "\"Operations\" must be a non-empty list",
            ));
        }
    };
    let mut attrs = current.attributes.clone();
    for op in &ops {
        let Some(o) = op.as_object() else {
            return Err(ScimError::bad(
                "invalidSyntax",
                "An operation is not an object",
            ));
        };
        let name = o.get("op").and_then(Value::as_str).unwrap_or("");
        let path = match o.get("path") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) if !s.trim().is_empty() => Some(s.trim()),
            Some(_) => return Err(ScimError::bad("invalidPath", "\"path\" must be a string")),
        };
        let value = o.get("value").cloned();
        patch::apply(kind, &mut attrs, name, path, value)?;
    }
    check(kind, &mut attrs, ctx.opts)?;
    dedup_members(&mut attrs);
    check_against(p, kind, Some(id), &attrs)?;
    store(p, kind, id, attrs, ctx);
    single(p, kind, id, ctx, StatusCode::OK)
}

pub(super) fn op_delete(
    p: &mut Provider,
    kind: Kind,
    id: &str,
    headers: &HeaderMap,
    ctx: &Ctx<'_>,
) -> Result<Reply, ScimError> {
    let current = p
        .table(kind)
        .get(id)
        .ok_or_else(|| ScimError::not_found(kind, id))?;
    check_if_match(headers, current, ctx.opts.etag)?;
    p.table_mut(kind).remove(id);
    // A deleted resource is nobody's member any more.
    let groups: Vec<String> = p
        .groups
        .values()
        .filter(|g| g.member_visible_at.contains_key(id))
        .map(|g| g.id.clone())
        .collect();
    for gid in groups {
        if let Some(g) = p.groups.get(&gid) {
            let mut attrs = g.attributes.clone();
            if let Some(list) = attrs.get_mut("members").and_then(Value::as_array_mut) {
                list.retain(|m| m.get("value").and_then(Value::as_str) != Some(id));
            }
            store(p, Kind::Group, &gid, attrs, ctx);
        }
    }
    Ok(Reply {
        status: StatusCode::NO_CONTENT,
        body: None,
        etag: None,
        location: None,
    })
}

/// The query of a listing, from the URL or a `.search` body.
#[derive(Debug, Default)]
pub(super) struct ListQuery {
    pub(super) filter: Option<String>,
    pub(super) sort_by: Option<String>,
    pub(super) descending: bool,
    pub(super) start_index: Option<String>,
    pub(super) count: Option<String>,
    pub(super) attributes: Option<String>,
    pub(super) excluded: Option<String>,
}

impl ListQuery {
    pub(super) fn from_url(q: Option<&str>) -> Self {
        let mut out = ListQuery::default();
        for (k, v) in url::form_urlencoded::parse(q.unwrap_or("").as_bytes()) {
            let v = Some(v.into_owned());
            match k.as_ref() {
                "filter" => out.filter = v,
                "sortBy" => out.sort_by = v,
                "sortOrder" => {
                    out.descending = v.is_some_and(|o| o.eq_ignore_ascii_case("descending"))
                }
                "startIndex" => out.start_index = v,
                "count" => out.count = v,
                "attributes" => out.attributes = v,
                "excludedAttributes" => out.excluded = v,
                _ => {}
            }
        }
        out
    }

    pub(super) fn from_search(body: &Bytes) -> Result<Self, ScimError> {
        let Ok(Value::Object(b)) = serde_json::from_slice::<Value>(body) else {
            return Err(ScimError::bad(
                "invalidSyntax",
                "The request body is not a JSON object",
            ));
        };
        let is_search = b
            .get("schemas")
            .and_then(Value::as_array)
            .is_some_and(|a| a.iter().any(|s| s.as_str() == Some(SCHEMA_SEARCH)));
        if !is_search {
            return Err(ScimError::bad(
                "invalidSyntax",
                format!("\"schemas\" must be [\"{SCHEMA_SEARCH}\"]"),
            ));
        }
        let text = |k: &str| match b.get(k) {
            Some(Value::String(s)) => Some(s.clone()),
            Some(Value::Number(n)) => Some(n.to_string()),
            Some(Value::Array(a)) => Some(
                a.iter()
                    .filter_map(Value::as_str)
                    .collect::<Vec<_>>()
                    .join(","),
            ),
            _ => None,
        };
        Ok(ListQuery {
            filter: text("filter"),
            sort_by: text("sortBy"),
            descending: text("sortOrder").is_some_and(|o| o.eq_ignore_ascii_case("descending")),
            start_index: text("startIndex"),
            count: text("count"),
            attributes: text("attributes"),
            excluded: text("excludedAttributes"),
        })
    }
}

pub(super) static NOT_CASE_EXACT: fn(&str) -> bool = |p| !case_exact(p);

pub(super) fn scim_semantics() -> Semantics<'static> {
    Semantics {
        names_ci: true,
        values_ci: &NOT_CASE_EXACT,
    }
}

pub(super) fn op_list(
    p: &Provider,
    kind: Kind,
    q: &ListQuery,
    ctx: &Ctx<'_>,
) -> Result<Reply, ScimError> {
    op_list_kinds(p, &[kind], q, ctx)
}

pub(super) fn op_list_kinds(
    p: &Provider,
    kinds: &[Kind],
    q: &ListQuery,
    ctx: &Ctx<'_>,
) -> Result<Reply, ScimError> {
    let o = ctx.opts;
    let expr = match &q.filter {
        Some(_) if !o.filter => return Err(ScimError::not_implemented("Filtering")),
        Some(f) => Some(filter::parse(f).map_err(|why| {
            ScimError::bad("invalidFilter", format!("The filter is not valid: {why}"))
        })?),
        None => None,
    };
    if q.sort_by.is_some() && !o.sort {
        return Err(ScimError::not_implemented("Sorting"));
    }
    let int =
        |v: &Option<String>, what: &str| -> Result<Option<i64>, ScimError> {
            match v {
                None => Ok(None),
                Some(s) => s.trim().parse::<i64>().map(Some).map_err(|_| {
                    ScimError::bad("invalidValue", format!("{what} must be an integer"))
                }),
            }
        };
    let start = int(&q.start_index, "startIndex")?.unwrap_or(1).max(1) as usize;
    let count = int(&q.count, "count")?
        .unwrap_or(o.max_results as i64)
        .clamp(0, o.max_results as i64) as usize;
    let sem = scim_semantics();
    let mut items: Vec<(&ScimResource, Value)> = kinds
        .iter()
        .flat_map(|k| p.table(*k).values())
        .filter(|r| r.visible_at <= ctx.now)
        .map(|r| (r, view(p, r, &ctx.base, ctx.now)))
        .filter(|(_, v)| expr.as_ref().is_none_or(|e| e.matches_with(v, &sem)))
        .collect();
    items.sort_by_key(|(r, _)| r.seq);
    if let Some(by) = &q.sort_by {
        let key = |v: &Value| -> Option<String> {
            filter::lookup(v, by, true).first().map(|x| match x {
                Value::String(s) if !case_exact(by) => s.to_lowercase(),
                Value::String(s) => s.clone(),
                other => other.to_string(),
            })
        };
        // Stable: ties (and equal timestamps) keep creation order. Missing values last.
        items.sort_by(|(_, a), (_, b)| match (key(a), key(b)) {
            (Some(x), Some(y)) if q.descending => y.cmp(&x),
            (Some(x), Some(y)) => x.cmp(&y),
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, Some(_)) => std::cmp::Ordering::Greater,
            (None, None) => std::cmp::Ordering::Equal,
        });
    }
    let total = items.len();
    let page: Vec<Value> = items
        .into_iter()
        .skip(start - 1)
        .take(count)
        .map(|(_, v)| project(v, q.attributes.as_deref(), q.excluded.as_deref()))
        .collect();
    let mut body = json!({
        "schemas": [SCHEMA_LIST],
        "totalResults": total,
        "itemsPerPage": page.len(),
        "startIndex": start,
    });
    if !page.is_empty() || count > 0 {
        body["Resources"] = Value::Array(page);
    }
    Ok(Reply::json(StatusCode::OK, body))
}

pub(super) fn ctx<'a>(inner: &'a Inner, headers: &HeaderMap) -> Ctx<'a> {
    Ctx {
        opts: &inner.opts,
        base: base(inner, headers),
        now: Instant::now(),
        visibility: inner.faults.visibility_delay(),
    }
}

pub(super) fn kind_of(endpoint: &str) -> Result<Kind, ScimError> {
    Kind::from_endpoint(endpoint).ok_or_else(|| {
        ScimError::new(
            StatusCode::NOT_FOUND,
            None,
            format!("No such endpoint: /{endpoint}"),
        )
    })
}
