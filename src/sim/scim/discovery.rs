//! Middleware (bearer tokens, limits, faults) and discovery: ServiceProviderConfig, ResourceTypes, Schemas.

use super::*;

// ---------------------------------------------------------------------------------------
// Middleware and discovery
// ---------------------------------------------------------------------------------------

pub(super) async fn authenticate(
    State(inner): State<Arc<Inner>>,
    req: Request,
    next: Next,
) -> Response {
    let token = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let (scheme, rest) = v.trim().split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim())
        })
        .unwrap_or("")
        .to_string();
    let ok = !token.is_empty() && inner.lock().tokens.get(&token) == Some(&true);
    if ok {
        return next.run(req).await;
    }
    let mut r = ScimError::new(
        StatusCode::UNAUTHORIZED,
        None,
        "Authorization failure. The authorization header is invalid or missing.",
    )
    .response();
    r.headers_mut().insert(
        "www-authenticate",
        HeaderValue::from_static("Bearer realm=\"accessdesk-scim-sim\""),
    );
    r
}

pub(super) async fn fallback(req: Request) -> Response {
    ScimError::new(
        StatusCode::NOT_FOUND,
        None,
        format!("No such endpoint: {} {}", req.method(), req.uri().path()),
    )
    .response()
}

pub(super) async fn me() -> Response {
    ScimError::not_implemented("/Me").response()
}

pub(super) fn base(inner: &Inner, headers: &HeaderMap) -> String {
    let host = headers
        .get("host")
        .and_then(|h| h.to_str().ok())
        .unwrap_or("127.0.0.1");
    format!("http://{host}{}", inner.opts.root)
}

pub(super) fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

pub(super) async fn service_provider_config(
    State(inner): State<Arc<Inner>>,
    headers: HeaderMap,
) -> Response {
    let o = &inner.opts;
    let base = base(&inner, &headers);
    scim_json(
        StatusCode::OK,
        &json!({
            "schemas": [SCHEMA_SPC],
            "documentationUri": "https://datatracker.ietf.org/doc/html/rfc7644",
            "patch": {"supported": o.patch},
            "bulk": {"supported": o.bulk, "maxOperations": if o.bulk { o.bulk_max_operations } else { 0 }, "maxPayloadSize": if o.bulk { 1_048_576 } else { 0 }},
            "filter": {"supported": o.filter, "maxResults": o.max_results},
            "changePassword": {"supported": false},
            "sort": {"supported": o.sort},
            "etag": {"supported": o.etag},
            "authenticationSchemes": [{
                "type": "oauthbearertoken",
                "name": "OAuth Bearer Token",
                "description": "Authentication scheme using the OAuth Bearer Token Standard",
                "specUri": "https://www.rfc-editor.org/info/rfc6750",
                "primary": true
            }],
            "meta": {"resourceType": "ServiceProviderConfig", "location": format!("{base}/ServiceProviderConfig")},
        }),
    )
}

pub(super) fn resource_type_json(inner: &Inner, base: &str, kind: Kind) -> Value {
    let mut v = json!({
        "schemas": [SCHEMA_RESOURCE_TYPE],
        "id": kind.name(),
        "name": kind.name(),
        "endpoint": format!("/{}", kind.endpoint()),
        "description": format!("{} Account", kind.name()),
        "schema": kind.schema(),
        "meta": {"resourceType": "ResourceType", "location": format!("{base}/ResourceTypes/{}", kind.name())},
    });
    if kind == Kind::User && inner.opts.enterprise_extension {
        v["schemaExtensions"] = json!([{"schema": SCHEMA_ENTERPRISE, "required": false}]);
    }
    v
}

pub(super) fn list_of(resources: Vec<Value>) -> Value {
    json!({
        "schemas": [SCHEMA_LIST],
        "totalResults": resources.len(),
        "itemsPerPage": resources.len(),
        "startIndex": 1,
        "Resources": resources,
    })
}

/// A discovery listing. RFC 7644 §4: paging is ignored; a filter is refused with 403.
pub(super) fn discovery_list(q: &Option<String>, items: impl FnOnce() -> Vec<Value>) -> Response {
    let has_filter = url::form_urlencoded::parse(q.as_deref().unwrap_or("").as_bytes())
        .any(|(k, _)| k == "filter");
    if has_filter {
        return ScimError::new(
            StatusCode::FORBIDDEN,
            None,
            "Filtering is not allowed on discovery endpoints",
        )
        .response();
    }
    scim_json(StatusCode::OK, &list_of(items()))
}

pub(super) async fn resource_types(
    State(inner): State<Arc<Inner>>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> Response {
    discovery_list(&q, || {
        let base = base(&inner, &headers);
        [Kind::User, Kind::Group]
            .into_iter()
            .map(|k| resource_type_json(&inner, &base, k))
            .collect()
    })
}

pub(super) async fn resource_type(
    State(inner): State<Arc<Inner>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let base = base(&inner, &headers);
    match [Kind::User, Kind::Group]
        .into_iter()
        .find(|k| k.name() == id)
    {
        Some(k) => scim_json(StatusCode::OK, &resource_type_json(&inner, &base, k)),
        None => ScimError::new(
            StatusCode::NOT_FOUND,
            None,
            format!("ResourceType {id} not found"),
        )
        .response(),
    }
}

/// The sub-attributes of a complex attribute (RFC 7643 §4, §8.7).
pub(super) fn sub_attributes(attr: &str) -> &'static [&'static str] {
    match attr {
        "name" => &[
            "formatted",
            "familyName",
            "givenName",
            "middleName",
            "honorificPrefix",
            "honorificSuffix",
        ],
        "addresses" => &[
            "formatted",
            "streetAddress",
            "locality",
            "region",
            "postalCode",
            "country",
            "type",
            "primary",
        ],
        "groups" | "members" => &["value", "$ref", "display", "type"],
        "manager" => &["value", "$ref", "displayName"],
        "emails" | "phoneNumbers" | "ims" | "photos" | "entitlements" | "roles"
        | "x509Certificates" => &["value", "display", "type", "primary"],
        _ => &[],
    }
}

/// One attribute's description: type, multiplicity, case-exactness, mutability and
/// returnability as RFC 7643 defines them for the core schemas.
pub(super) fn attribute_json(parent: Option<&str>, name: &str) -> Value {
    let full = match parent {
        Some(p) => format!("{p}.{name}"),
        None => name.to_string(),
    };
    let subs = if parent.is_none() {
        sub_attributes(name)
    } else {
        &[]
    };
    let ty = match name {
        "active" | "primary" => "boolean",
        "$ref" => "reference",
        _ if !subs.is_empty() => "complex",
        _ => "string",
    };
    let (mutability, returned) = match (parent, name) {
        // A password is written, never returned; `groups` is computed from the groups.
        (None, "password") => ("writeOnly", "never"),
        (None, "groups") | (Some("groups"), _) => ("readOnly", "default"),
        // A member is an id (its display name is the server's to say).
        (Some("members"), "display") => ("readOnly", "default"),
        (Some("members"), _) => ("immutable", "default"),
        _ => ("readWrite", "default"),
    };
    let required = matches!(
        (parent, name),
        (None, "userName" | "displayName") | (Some("members"), "value")
    );
    let mut v = json!({
        "name": name,
        "type": ty,
        "multiValued": parent.is_none() && MULTI_VALUED.contains(&name),
        "required": required,
        "caseExact": case_exact(&full),
        "mutability": mutability,
        "returned": returned,
        "uniqueness": if parent.is_none() && name == "userName" { "server" } else { "none" },
    });
    if ty == "reference" {
        v["referenceTypes"] = json!(["User", "Group"]);
    }
    if !subs.is_empty() {
        v["subAttributes"] = Value::Array(
            subs.iter()
                .map(|sub| attribute_json(Some(name), sub))
                .collect(),
        );
    }
    v
}

/// A schema: the attributes the provider knows, as RFC 7643 §7 describes them.
pub(super) fn schema_json(inner: &Inner, base: &str, id: &str) -> Option<Value> {
    let describe = |names: &[&str]| -> Vec<Value> {
        names
            .iter()
            .filter(|a| !matches!(**a, "schemas" | "id" | "meta"))
            .map(|a| attribute_json(None, a))
            .collect()
    };
    let (name, attributes) = match id {
        SCHEMA_USER => ("User", describe(USER_ATTRIBUTES)),
        SCHEMA_GROUP => ("Group", describe(GROUP_ATTRIBUTES)),
        SCHEMA_ENTERPRISE if inner.opts.enterprise_extension => (
            "EnterpriseUser",
            describe(&[
                "employeeNumber",
                "costCenter",
                "organization",
                "division",
                "department",
                "manager",
            ]),
        ),
        _ => return None,
    };
    Some(json!({
        "schemas": [SCHEMA_SCHEMA],
        "id": id,
        "name": name,
        "attributes": attributes,
        "meta": {"resourceType": "Schema", "location": format!("{base}/Schemas/{id}")},
    }))
}

pub(super) async fn schemas(
    State(inner): State<Arc<Inner>>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> Response {
    discovery_list(&q, || {
        let base = base(&inner, &headers);
        [SCHEMA_USER, SCHEMA_GROUP, SCHEMA_ENTERPRISE]
            .iter()
            .filter_map(|s| schema_json(&inner, &base, s))
            .collect()
    })
}

pub(super) async fn schema(
    State(inner): State<Arc<Inner>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    match schema_json(&inner, &base(&inner, &headers), &id) {
        Some(s) => scim_json(StatusCode::OK, &s),
        None => ScimError::new(
            StatusCode::NOT_FOUND,
            None,
            format!("Schema {id} not found"),
        )
        .response(),
    }
}
