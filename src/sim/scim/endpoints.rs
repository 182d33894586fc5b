//! The HTTP endpoints.

use super::*;

// ---------------------------------------------------------------------------------------
// Endpoints
// ---------------------------------------------------------------------------------------

pub(super) async fn list(
    State(inner): State<Arc<Inner>>,
    Path(endpoint): Path<String>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> Response {
    let ctx = ctx(&inner, &headers);
    respond(
        kind_of(&endpoint)
            .and_then(|k| op_list(&inner.lock(), k, &ListQuery::from_url(q.as_deref()), &ctx)),
    )
}

pub(super) async fn search(
    State(inner): State<Arc<Inner>>,
    Path(endpoint): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let ctx = ctx(&inner, &headers);
    respond(kind_of(&endpoint).and_then(|k| {
        let q = ListQuery::from_search(&body)?;
        op_list(&inner.lock(), k, &q, &ctx)
    }))
}

/// `POST /.search` at the root (RFC 7644 §3.4.3): Users and Groups together, filtered,
/// sorted and paged as one listing.
pub(super) async fn search_all(
    State(inner): State<Arc<Inner>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let ctx = ctx(&inner, &headers);
    respond(
        ListQuery::from_search(&body)
            .and_then(|q| op_list_kinds(&inner.lock(), &[Kind::User, Kind::Group], &q, &ctx)),
    )
}

pub(super) async fn create(
    State(inner): State<Arc<Inner>>,
    Path(endpoint): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let ctx = ctx(&inner, &headers);
    respond(kind_of(&endpoint).and_then(|k| op_create(&mut inner.lock(), k, &body, &ctx)))
}

pub(super) async fn read(
    State(inner): State<Arc<Inner>>,
    Path((endpoint, id)): Path<(String, String)>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> Response {
    let ctx = ctx(&inner, &headers);
    let q = ListQuery::from_url(q.as_deref());
    respond(kind_of(&endpoint).and_then(|k| {
        let p = inner.lock();
        match p.table(k).get(&id) {
            Some(r) if r.visible_at <= ctx.now => {}
            _ => return Err(ScimError::not_found(k, &id)),
        }
        let mut reply = single(&p, k, &id, &ctx, StatusCode::OK)?;
        reply.body = reply
            .body
            .map(|b| project(b, q.attributes.as_deref(), q.excluded.as_deref()));
        Ok(reply)
    }))
}

pub(super) async fn replace(
    State(inner): State<Arc<Inner>>,
    Path((endpoint, id)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let ctx = ctx(&inner, &headers);
    respond(
        kind_of(&endpoint)
            .and_then(|k| op_replace(&mut inner.lock(), k, &id, &body, &headers, &ctx)),
    )
}

pub(super) async fn patch(
    State(inner): State<Arc<Inner>>,
    Path((endpoint, id)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let ctx = ctx(&inner, &headers);
    respond(
        kind_of(&endpoint).and_then(|k| op_patch(&mut inner.lock(), k, &id, &body, &headers, &ctx)),
    )
}

pub(super) async fn delete(
    State(inner): State<Arc<Inner>>,
    Path((endpoint, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let ctx = ctx(&inner, &headers);
    respond(kind_of(&endpoint).and_then(|k| op_delete(&mut inner.lock(), k, &id, &headers, &ctx)))
}

/// RFC 7644 §3.7: operations in order, `bulkId:` references resolved to the ids created
/// earlier in the request, stopping after `failOnErrors` errors.
pub(super) async fn bulk(
    State(inner): State<Arc<Inner>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let ctx = ctx(&inner, &headers);
    respond(run_bulk(&mut inner.lock(), &body, &ctx))
}

pub(super) fn run_bulk(p: &mut Provider, body: &Bytes, ctx: &Ctx<'_>) -> Result<Reply, ScimError> {
    if !ctx.opts.bulk {
        return Err(ScimError::not_implemented("Bulk"));
    }
    let Ok(Value::Object(req)) = serde_json::from_slice::<Value>(body) else {
        return Err(ScimError::bad(
            "invalidSyntax",
            "The request body is not a JSON object",
        ));
    };
    let is_bulk = req
        .get("schemas")
        .and_then(Value::as_array)
        .is_some_and(|a| a.iter().any(|s| s.as_str() == Some(SCHEMA_BULK_REQUEST)));
    let Some(ops) = req
        .get("Operations")
        .and_then(Value::as_array)
        .filter(|_| is_bulk)
    else {
        return Err(ScimError::bad(
            "invalidSyntax",
            format!("A BulkRequest lists {SCHEMA_BULK_REQUEST} and has \"Operations\""),
        ));
    };
    if ops.len() > ctx.opts.bulk_max_operations as usize {
        return Err(ScimError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            None,
            format!(
                "The bulk request has {} operations; the maximum is {}",
                ops.len(),
                ctx.opts.bulk_max_operations
            ),
        ));
    }
    let fail_on = req
        .get("failOnErrors")
        .and_then(Value::as_u64)
        .unwrap_or(u64::MAX);
    let mut bulk_ids: HashMap<String, String> = HashMap::new();
    let mut results = Vec::new();
    let mut errors = 0u64;
    for op in ops {
        if errors >= fail_on {
            break;
        }
        let method = op
            .get("method")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_ascii_uppercase();
        let bulk_id = op.get("bulkId").and_then(Value::as_str).map(str::to_string);
        let resolve = |s: &str| {
            let mut out = s.to_string();
            for (b, id) in &bulk_ids {
                out = out.replace(&format!("bulkId:{b}"), id);
            }
            out
        };
        let path = resolve(op.get("path").and_then(Value::as_str).unwrap_or(""));
        let data = op.get("data").map(|d| Bytes::from(resolve(&d.to_string())));
        let mut segs = path.trim_matches('/').splitn(2, '/');
        let endpoint = segs.next().unwrap_or("");
        let id = segs.next();
        let mut op_headers = HeaderMap::new();
        if let Some(v) = op.get("version").and_then(Value::as_str)
            && let Ok(h) = HeaderValue::from_str(v)
        {
            op_headers.insert("if-match", h);
        }
        let outcome = kind_of(endpoint).and_then(|k| {
            let data = data.clone().unwrap_or_default();
            match (method.as_str(), id) {
                ("POST", None) => op_create(p, k, &data, ctx),
                ("PUT", Some(id)) => op_replace(p, k, id, &data, &op_headers, ctx),
                ("PATCH", Some(id)) => op_patch(p, k, id, &data, &op_headers, ctx),
                ("DELETE", Some(id)) => op_delete(p, k, id, &op_headers, ctx),
                _ => Err(ScimError::bad(
                    "invalidSyntax",
                    format!("Unsupported bulk operation {method} {path}"),
                )),
            }
        });
        let mut result = json!({"method": method});
        if let Some(b) = &bulk_id {
            result["bulkId"] = json!(b);
        }
        match outcome {
            Ok(reply) => {
                if let (Some(b), "POST") = (&bulk_id, method.as_str())
                    && let Some(new_id) = reply
                        .body
                        .as_ref()
                        .and_then(|v| v.get("id"))
                        .and_then(Value::as_str)
                {
                    bulk_ids.insert(b.clone(), new_id.to_string());
                }
                if let Some(l) = reply.location {
                    result["location"] = json!(l);
                }
                if let Some(v) = reply.etag {
                    result["version"] = json!(v);
                }
                result["status"] = json!(reply.status.as_u16().to_string());
            }
            Err(e) => {
                errors += 1;
                result["status"] = json!(e.status.as_u16().to_string());
                result["response"] = e.body();
            }
        }
        results.push(result);
    }
    Ok(Reply::json(
        StatusCode::OK,
        json!({"schemas": [SCHEMA_BULK_RESPONSE], "Operations": results}),
    ))
}
