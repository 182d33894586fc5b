//! Resources: checking what clients send.

use super::*;

// ---------------------------------------------------------------------------------------
// Resources: input checking
// ---------------------------------------------------------------------------------------

/// The attribute's canonical spelling (attribute names are case-insensitive).
pub(super) fn canonical(kind: Kind, name: &str) -> String {
    if let Some(c) = kind
        .attributes()
        .iter()
        .find(|a| a.eq_ignore_ascii_case(name))
    {
        return c.to_string();
    }
    if name.eq_ignore_ascii_case(SCHEMA_ENTERPRISE) {
        return SCHEMA_ENTERPRISE.to_string();
    }
    name.to_string()
}

/// The body of a create or replace: an object, canonical names, read-only attributes
/// dropped (RFC 7644 §3.5.1: they are ignored), schemas checked.
pub(super) fn incoming(kind: Kind, body: &Bytes) -> Result<Map<String, Value>, ScimError> {
    let Ok(Value::Object(obj)) = serde_json::from_slice::<Value>(body) else {
        return Err(ScimError::bad(
            "invalidSyntax",
            "The request body is not a JSON object",
        ));
    };
    let mut out = Map::new();
    for (k, v) in obj {
        let k = canonical(kind, &k);
        if matches!(k.as_str(), "id" | "meta" | "groups") {
            continue;
        }
        out.insert(k, v);
    }
    let has_schema = out
        .get("schemas")
        .and_then(Value::as_array)
        .is_some_and(|a| {
            a.iter().any(|s| {
                s.as_str()
                    .is_some_and(|s| s.eq_ignore_ascii_case(kind.schema()))
            })
        });
    if !has_schema {
        return Err(ScimError::bad(
            "invalidSyntax",
            format!("\"schemas\" must list {}", kind.schema()),
        ));
    }
    Ok(out)
}

/// Types and required attributes; the extension schema listed when its attributes are set.
pub(super) fn check(
    kind: Kind,
    attrs: &mut Map<String, Value>,
    opts: &ScimSimOptions,
) -> Result<(), ScimError> {
    let required = kind.required();
    match attrs.get(required) {
        Some(Value::String(s)) if !s.trim().is_empty() => {}
        Some(Value::String(_)) | None | Some(Value::Null) => {
            return Err(ScimError::bad(
                "invalidValue",
                format!("Attribute \"{required}\" is required"),
            ));
        }
        Some(_) => {
            return Err(ScimError::bad(
                "invalidValue",
                format!("Attribute \"{required}\" must be a string"),
            ));
        }
    }
    for (k, v) in attrs.iter() {
        if v.is_null() {
            continue;
        }
        let ok = match k.as_str() {
            "active" => v.is_boolean(),
            "name" => v.is_object(),
            a if STRING_ATTRIBUTES.contains(&a) => v.is_string(),
            "schemas" => v.as_array().is_some_and(|a| a.iter().all(Value::is_string)),
            a if MULTI_VALUED.contains(&a) => {
                v.as_array().is_some_and(|a| a.iter().all(Value::is_object))
            }
            SCHEMA_ENTERPRISE => v.is_object(),
            _ => true,
        };
        if !ok {
            return Err(ScimError::bad(
                "invalidValue",
                format!("Attribute \"{k}\" has the wrong type"),
            ));
        }
    }
    if attrs.contains_key(SCHEMA_ENTERPRISE) {
        if kind != Kind::User || !opts.enterprise_extension {
            return Err(ScimError::bad(
                "invalidSyntax",
                format!("The {SCHEMA_ENTERPRISE} extension is not supported here"),
            ));
        }
        if let Some(list) = attrs.get_mut("schemas").and_then(Value::as_array_mut)
            && !list.iter().any(|s| s.as_str() == Some(SCHEMA_ENTERPRISE))
        {
            list.push(json!(SCHEMA_ENTERPRISE));
        }
    }
    if let Some(members) = attrs.get("members").and_then(Value::as_array)
        && members
            .iter()
            .any(|m| !m.get("value").is_some_and(Value::is_string))
    {
        return Err(ScimError::bad(
            "invalidValue",
            "Every member needs a \"value\" (the member's id)",
        ));
    }
    Ok(())
}

/// Writes that must hold against the rest of the state: userName unique (case-insensitive),
/// members that exist.
pub(super) fn check_against(
    p: &Provider,
    kind: Kind,
    self_id: Option<&str>,
    attrs: &Map<String, Value>,
) -> Result<(), ScimError> {
    match kind {
        Kind::User => {
            let name = attrs.get("userName").and_then(Value::as_str).unwrap_or("");
            if let Some(other) = p.user_named(name)
                && Some(other.id.as_str()) != self_id
            {
                return Err(ScimError::new(
                    StatusCode::CONFLICT,
                    Some("uniqueness"),
                    "One or more of the attribute values are already in use or are reserved.",
                ));
            }
        }
        Kind::Group => {
            for m in member_values(attrs) {
                if !p.users.contains_key(&m) && !p.groups.contains_key(&m) {
                    return Err(ScimError::bad(
                        "invalidValue",
                        format!("Member {m} is neither a User nor a Group of this provider"),
                    ));
                }
            }
        }
    }
    Ok(())
}

/// RFC 7644 §3.14: a write with If-Match must name the current version.
pub(super) fn check_if_match(
    headers: &HeaderMap,
    r: &ScimResource,
    etag_on: bool,
) -> Result<(), ScimError> {
    if !etag_on {
        return Ok(());
    }
    let Some(v) = headers.get("if-match").and_then(|v| v.to_str().ok()) else {
        return Ok(());
    };
    let strip = |t: &str| {
        t.trim()
            .trim_start_matches("W/")
            .trim_matches('"')
            .to_string()
    };
    let current = strip(&r.etag());
    if v.trim() == "*" || v.split(',').any(|t| strip(t) == current) {
        return Ok(());
    }
    Err(ScimError::new(
        StatusCode::PRECONDITION_FAILED,
        None,
        "Failed to update. Resource has changed on the server.",
    ))
}

/// Store new attributes on an existing resource: version, timestamps, and the visibility
/// and add counts of members that are new.
pub(super) fn store(
    p: &mut Provider,
    kind: Kind,
    id: &str,
    attrs: Map<String, Value>,
    ctx: &Ctx<'_>,
) {
    let new_members: HashSet<String> = member_values(&attrs).into_iter().collect();
    let Some(r) = p.table_mut(kind).get_mut(id) else {
        return;
    };
    let added: Vec<String> = new_members
        .iter()
        .filter(|m| !r.member_visible_at.contains_key(*m))
        .cloned()
        .collect();
    r.member_visible_at.retain(|m, _| new_members.contains(m));
    for m in &added {
        r.member_visible_at
            .insert(m.clone(), ctx.now + ctx.visibility);
    }
    r.attributes = attrs;
    r.version += 1;
    r.last_modified = Utc::now();
    for m in added {
        p.counts.added(id, &m);
    }
}

/// Members listed twice count once (an add of an existing value changes nothing).
pub(super) fn dedup_members(attrs: &mut Map<String, Value>) {
    if let Some(list) = attrs.get_mut("members").and_then(Value::as_array_mut) {
        let mut seen = HashSet::new();
        list.retain(|m| {
            m.get("value")
                .and_then(Value::as_str)
                .is_none_or(|v| seen.insert(v.to_string()))
        });
    }
}
