//! SCIM resources: users and groups to and from JSON, PATCH operations, filters and paths.

use super::*;

// ---------------------------------------------------------------------------------------
// Resources
// ---------------------------------------------------------------------------------------

pub(super) fn id_of(v: &Value) -> Option<String> {
    match v.get("id")? {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// A SCIM User as a [`RemoteAccount`]; Err names what is missing. `attributes` holds the
/// core attributes the adapter writes; see [`account_from_user_with`].
pub fn account_from_user(v: &Value) -> std::result::Result<RemoteAccount, String> {
    account_from_user_with(v, false)
}

/// A SCIM User as a [`RemoteAccount`], its synced attributes read as the adapter writes
/// them: `enterprise` adds department and costCenter from the enterprise extension.
pub fn account_from_user_with(
    v: &Value,
    enterprise: bool,
) -> std::result::Result<RemoteAccount, String> {
    let mut a = account_core(v)?;
    let text = |x: Option<&Value>| match x {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    };
    let name = v.get("name");
    let attrs = &mut a.attributes;
    attrs.insert("email".into(), a.email.clone().unwrap_or_default());
    attrs.insert(
        "givenName".into(),
        text(name.and_then(|n| n.get("givenName"))),
    );
    attrs.insert(
        "familyName".into(),
        text(name.and_then(|n| n.get("familyName"))),
    );
    attrs.insert("displayName".into(), text(v.get("displayName")));
    attrs.insert("title".into(), text(v.get("title")));
    if enterprise {
        let ext = v.get(SCHEMA_ENTERPRISE_USER);
        for key in ["department", "costCenter"] {
            attrs.insert(key.into(), text(ext.and_then(|e| e.get(key))));
        }
    }
    Ok(a)
}

pub(super) fn account_core(v: &Value) -> std::result::Result<RemoteAccount, String> {
    let external_id = id_of(v).ok_or("the user has no \"id\"")?;
    let login = v
        .get("userName")
        .and_then(Value::as_str)
        .ok_or_else(|| format!("user {external_id} has no \"userName\""))?
        .to_string();
    let active = match v.get("active") {
        // RFC 7643 leaves the default to the provider; absent means nobody turned it off.
        None | Some(Value::Null) => true,
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) if s.eq_ignore_ascii_case("true") => true,
        Some(Value::String(s)) if s.eq_ignore_ascii_case("false") => false,
        Some(_) => return Err(format!("user {external_id}: \"active\" is not a boolean")),
    };
    Ok(RemoteAccount {
        external_id,
        login,
        email: primary_email(v),
        active,
        // The HR id: externalId (which this adapter sets), else the enterprise extension's
        // employeeNumber (which it also sets, and which some providers keep instead).
        hris_id: v
            .get("externalId")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .or_else(|| {
                v.get(SCHEMA_ENTERPRISE_USER)
                    .and_then(|e| e.get("employeeNumber"))
                    .and_then(Value::as_str)
                    .filter(|s| !s.is_empty())
            })
            .map(str::to_string),
        attributes: BTreeMap::new(),
    })
}

/// The `attributes` a user read asks for: the ones [`account_from_user_with`] reads.
pub(super) fn user_attributes(enterprise: bool) -> String {
    let mut s = USER_ATTRIBUTES.to_string();
    if enterprise {
        for a in ENTERPRISE_ATTRIBUTES {
            s.push_str(&format!(",{SCHEMA_ENTERPRISE_USER}:{a}"));
        }
    }
    s
}

/// The primary email, else the work email, else the first one.
pub(super) fn primary_email(v: &Value) -> Option<String> {
    let emails = v.get("emails")?.as_array()?;
    let value = |e: &Value| e.get("value").and_then(Value::as_str).map(str::to_string);
    emails
        .iter()
        .find(|e| e.get("primary").is_some_and(lenient_bool_true))
        .and_then(value)
        .or_else(|| {
            emails
                .iter()
                .find(|e| e.get("type").and_then(Value::as_str) == Some("work"))
                .and_then(value)
        })
        .or_else(|| emails.iter().find_map(value))
}

/// Where one account field goes in a SCIM User.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Field {
    Top(&'static str),
    Sub(&'static str, &'static str),
    Enterprise(&'static str),
}

impl Field {
    pub(super) fn path(self) -> String {
        match self {
            Field::Top(a) => a.to_string(),
            Field::Sub(a, b) => format!("{a}.{b}"),
            Field::Enterprise(a) => format!("{SCHEMA_ENTERPRISE_USER}:{a}"),
        }
    }

    /// Set the field in a User object (creating `name` / the extension object as needed).
    pub(super) fn set(self, user: &mut Map<String, Value>, value: Value) {
        let (parent, attr) = match self {
            Field::Top(a) => {
                user.insert(a.into(), value);
                return;
            }
            Field::Sub(parent, attr) => (parent, attr),
            Field::Enterprise(attr) => (SCHEMA_ENTERPRISE_USER, attr),
        };
        let slot = user
            .entry(parent.to_string())
            .or_insert_with(|| Value::Object(Map::new()));
        if !slot.is_object() {
            *slot = Value::Object(Map::new());
        }
        if let Some(m) = slot.as_object_mut() {
            m.insert(attr.into(), value);
        }
    }
}

/// Every field `spec` sets (non-empty), where it goes, and its value. Create, PATCH and the
/// PUT fallback all use this one mapping. `location` has no core User attribute and is not
/// sent; `title` is core; `department`, `costCenter`, `employeeNumber` and `manager` need
/// the enterprise extension.
pub(super) fn spec_fields(spec: &AccountSpec, enterprise: bool) -> Vec<(Field, Value)> {
    let mut out = Vec::new();
    let mut put = |f: Field, v: &str| {
        if !v.trim().is_empty() {
            out.push((f, Value::String(v.to_string())));
        }
    };
    put(Field::Top("userName"), &spec.login);
    put(Field::Top("externalId"), &spec.hris_id);
    put(Field::Sub("name", "givenName"), &spec.given_name);
    put(Field::Sub("name", "familyName"), &spec.family_name);
    put(Field::Top("displayName"), &spec.display_name);
    if let Some(t) = spec.attributes.get("title") {
        put(Field::Top("title"), t);
    }
    if enterprise {
        // The HR id goes in employeeNumber too: some providers do not keep externalId.
        put(Field::Enterprise("employeeNumber"), &spec.hris_id);
        for (key, attr) in [("department", "department"), ("costCenter", "costCenter")] {
            if let Some(v) = spec.attributes.get(key) {
                put(Field::Enterprise(attr), v);
            }
        }
        // RFC 7643 §4.3: `manager.value` is the manager's id in this provider; left out
        // where their account here is not known.
        if let Some(m) = spec
            .manager_account
            .as_deref()
            .filter(|m| !m.trim().is_empty())
        {
            out.push((Field::Enterprise("manager"), json!({ "value": m })));
        }
    }
    if !spec.email.trim().is_empty() {
        // The work email is the primary one; replacing `emails` drops other addresses, which
        // accessdesk does not manage.
        out.push((
            Field::Top("emails"),
            json!([{"value": spec.email, "type": "work", "primary": true}]),
        ));
    }
    out
}

/// Apply fields to a User object, adding the extension schema when an extension field is set.
pub(super) fn apply_fields(user: &mut Map<String, Value>, fields: Vec<(Field, Value)>) {
    let mut needs_ext = false;
    for (f, v) in fields {
        needs_ext |= matches!(f, Field::Enterprise(_));
        f.set(user, v);
    }
    let schemas = user
        .entry("schemas")
        .or_insert_with(|| json!([SCHEMA_USER]));
    if let Some(list) = schemas.as_array_mut() {
        if !list.iter().any(|s| s.as_str() == Some(SCHEMA_USER)) {
            list.insert(0, json!(SCHEMA_USER));
        }
        if needs_ext
            && !list
                .iter()
                .any(|s| s.as_str() == Some(SCHEMA_ENTERPRISE_USER))
        {
            list.push(json!(SCHEMA_ENTERPRISE_USER));
        }
    }
}

/// The body of POST /Users.
pub fn create_body(spec: &AccountSpec, enterprise: bool) -> Value {
    let mut user = Map::new();
    user.insert("schemas".into(), json!([SCHEMA_USER]));
    apply_fields(&mut user, spec_fields(spec, enterprise));
    user.insert("active".into(), Value::Bool(true));
    Value::Object(user)
}

/// PATCH `replace` operations for the fields `spec` sets.
pub fn update_ops(spec: &AccountSpec, enterprise: bool) -> Vec<Value> {
    spec_fields(spec, enterprise)
        .into_iter()
        .map(|(f, v)| json!({"op": "replace", "path": f.path(), "value": v}))
        .collect()
}

pub(super) fn patch_body(ops: Vec<Value>) -> Value {
    json!({"schemas": [SCHEMA_PATCH_OP], "Operations": ops})
}

/// A SCIM filter string literal: a JSON string (RFC 7644 §3.4.2.2 compValue), so quotes,
/// backslashes and control characters are escaped.
pub fn filter_string(value: &str) -> String {
    Value::String(value.to_string()).to_string()
}

/// `attr eq "value"`, escaped.
pub fn filter_eq(attr: &str, value: &str) -> String {
    format!("{attr} eq {}", filter_string(value))
}

/// Percent-encode everything but RFC 3986 unreserved characters (spaces as %20, not '+').
pub use crate::adapters::http::path_segment as percent_encode;

pub(super) fn with_query(path: &str, params: &[(&str, String)]) -> String {
    if params.is_empty() {
        return path.to_string();
    }
    let q: Vec<String> = params
        .iter()
        .map(|(k, v)| format!("{k}={}", percent_encode(v)))
        .collect();
    format!("{path}?{}", q.join("&"))
}

/// The entity tag to send in If-Match: the ETag header, else `meta.version` (quoted if bare).
pub(super) fn version_of(resp: &HttpResponse, resource: &Map<String, Value>) -> Option<String> {
    if let Some(e) = resp.header("etag").map(str::trim).filter(|e| !e.is_empty()) {
        return Some(e.to_string());
    }
    let v = resource
        .get("meta")
        .and_then(|m| m.get("version"))
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|v| !v.is_empty())?;
    Some(if v.ends_with('"') {
        v.to_string()
    } else {
        format!("\"{v}\"")
    })
}

/// A filter the provider would not run (the attribute or operator is not supported even
/// though filtering is): fall back to a scan.
pub(super) fn filter_rejected(e: &AdapterError) -> bool {
    e.status == Some(501)
        || (e.status == Some(400) && e.vendor_code.as_deref() == Some("invalidFilter"))
}

pub(super) fn sort_rejected(e: &AdapterError) -> bool {
    e.status == Some(501)
        || (e.status == Some(400)
            && matches!(
                e.vendor_code.as_deref(),
                Some("invalidPath" | "invalidValue" | "invalidSyntax" | "invalidFilter") | None
            ))
}

/// The provider refused a write made with If-Match because the resource changed.
pub(super) fn version_mismatch(e: &AdapterError, sent_if_match: bool) -> bool {
    e.status == Some(412)
        || (sent_if_match
            && e.status == Some(409)
            && e.vendor_code.as_deref() != Some("uniqueness"))
}

pub(super) fn member_values(group: &Value) -> std::result::Result<Vec<(String, bool)>, String> {
    match group.get("members") {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(a)) => Ok(a
            .iter()
            .filter_map(|m| {
                let v = m.get("value").and_then(Value::as_str)?;
                let is_group = m
                    .get("type")
                    .and_then(Value::as_str)
                    .is_some_and(|t| t.eq_ignore_ascii_case("group"));
                Some((v.to_string(), is_group))
            })
            .collect()),
        Some(_) => Err("\"members\" is not a list".into()),
    }
}

/// Add or remove one member in a Group object. Ok(false): nothing to change.
pub(super) fn edit_members(
    group: &mut Map<String, Value>,
    user_id: &str,
    add: bool,
) -> std::result::Result<bool, String> {
    let present = member_values(&Value::Object(group.clone()))?
        .iter()
        .any(|(v, _)| v == user_id);
    if add == present {
        return Ok(false);
    }
    let members = group
        .entry("members")
        .or_insert_with(|| Value::Array(Vec::new()));
    if members.is_null() {
        *members = Value::Array(Vec::new());
    }
    let list = members.as_array_mut().ok_or("\"members\" is not a list")?;
    if add {
        list.push(json!({"value": user_id}));
    } else {
        list.retain(|m| m.get("value").and_then(Value::as_str) != Some(user_id));
    }
    Ok(true)
}
