//! What a SCIM service provider says it can do (`/ServiceProviderConfig`, `/ResourceTypes`, `/Schemas`), read once and kept.

use super::*;

// ---------------------------------------------------------------------------------------
// Capabilities
// ---------------------------------------------------------------------------------------

/// What the provider says it supports (RFC 7643 §5), plus the resource types it serves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Capabilities {
    pub patch: bool,
    pub bulk: bool,
    pub filter: bool,
    /// `filter.maxResults`: the most resources one response returns.
    pub filter_max_results: Option<u32>,
    pub change_password: bool,
    pub sort: bool,
    pub etag: bool,
    /// `authenticationSchemes[].type` (e.g. `oauthbearertoken`).
    pub auth_schemes: Vec<String>,
    pub documentation_uri: Option<String>,
    /// The User resource type lists the enterprise extension.
    pub enterprise_user: bool,
    /// Endpoints from /ResourceTypes (default `/Users`, `/Groups`).
    pub users_endpoint: String,
    pub groups_endpoint: String,
}

impl Default for Capabilities {
    fn default() -> Self {
        Capabilities {
            patch: false,
            bulk: false,
            filter: false,
            filter_max_results: None,
            change_password: false,
            sort: false,
            etag: false,
            auth_schemes: Vec::new(),
            documentation_uri: None,
            enterprise_user: false,
            users_endpoint: "/Users".into(),
            groups_endpoint: "/Groups".into(),
        }
    }
}

impl Capabilities {
    /// Read a ServiceProviderConfig body. A feature block that is missing, or whose
    /// `supported` is not `true`, counts as unsupported: assuming less is always safe.
    pub fn from_service_provider_config(v: &Value) -> std::result::Result<Self, String> {
        let obj = v.as_object().ok_or("the body is not a JSON object")?;
        let has_schema = obj
            .get("schemas")
            .and_then(Value::as_array)
            .is_some_and(|a| {
                a.iter()
                    .any(|s| s.as_str() == Some(SCHEMA_SERVICE_PROVIDER_CONFIG))
            });
        let features = ["patch", "bulk", "filter", "changePassword", "sort", "etag"];
        if !has_schema && !features.iter().any(|f| obj.contains_key(*f)) {
            return Err(format!(
                "it has neither the {SCHEMA_SERVICE_PROVIDER_CONFIG} schema nor any feature block"
            ));
        }
        let supported = |name: &str| {
            obj.get(name)
                .and_then(|f| f.get("supported"))
                .is_some_and(lenient_bool_true)
        };
        let filter_max_results = obj
            .get("filter")
            .and_then(|f| f.get("maxResults"))
            .and_then(lenient_u64)
            .filter(|n| *n > 0)
            .map(|n| n.min(u32::MAX as u64) as u32);
        let auth_schemes = obj
            .get("authenticationSchemes")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|s| s.get("type").and_then(Value::as_str))
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default();
        Ok(Capabilities {
            patch: supported("patch"),
            bulk: supported("bulk"),
            filter: supported("filter"),
            filter_max_results,
            change_password: supported("changePassword"),
            sort: supported("sort"),
            etag: supported("etag"),
            auth_schemes,
            documentation_uri: obj
                .get("documentationUri")
                .and_then(Value::as_str)
                .map(str::to_string),
            ..Capabilities::default()
        })
    }

    /// Fill in endpoints and the enterprise extension from a /ResourceTypes ListResponse.
    pub fn apply_resource_types(&mut self, v: &Value) {
        let Some(types) = v.get("Resources").and_then(Value::as_array) else {
            return;
        };
        for t in types {
            let name = t
                .get("name")
                .or_else(|| t.get("id"))
                .and_then(Value::as_str)
                .unwrap_or("");
            let endpoint = t
                .get("endpoint")
                .and_then(Value::as_str)
                .filter(|e| !e.is_empty());
            let schema = t.get("schema").and_then(Value::as_str).unwrap_or("");
            if name.eq_ignore_ascii_case("User") || schema == SCHEMA_USER {
                if let Some(e) = endpoint {
                    self.users_endpoint = normalize_endpoint(e);
                }
                self.enterprise_user = t
                    .get("schemaExtensions")
                    .and_then(Value::as_array)
                    .is_some_and(|exts| {
                        exts.iter().any(|x| {
                            x.get("schema").and_then(Value::as_str) == Some(SCHEMA_ENTERPRISE_USER)
                        })
                    });
            } else if (name.eq_ignore_ascii_case("Group") || schema == SCHEMA_GROUP)
                && let Some(e) = endpoint
            {
                self.groups_endpoint = normalize_endpoint(e);
            }
        }
    }

    /// The advertised features, as the identity's scopes.
    pub fn features(&self) -> Vec<String> {
        let mut out = Vec::new();
        if self.patch {
            out.push("patch".to_string());
        }
        if self.filter {
            out.push(match self.filter_max_results {
                Some(n) => format!("filter(maxResults={n})"),
                None => "filter".to_string(),
            });
        }
        for (on, name) in [
            (self.sort, "sort"),
            (self.etag, "etag"),
            (self.bulk, "bulk"),
            (self.change_password, "changePassword"),
            (self.enterprise_user, "enterpriseUser"),
        ] {
            if on {
                out.push(name.to_string());
            }
        }
        out
    }
}

/// `/Users` stays relative to the base URL; a full URL is kept as is (same host only).
pub(super) fn normalize_endpoint(e: &str) -> String {
    if e.starts_with("http://") || e.starts_with("https://") || e.starts_with('/') {
        e.trim_end_matches('/').to_string()
    } else {
        format!("/{}", e.trim_end_matches('/'))
    }
}

pub(super) fn lenient_bool_true(v: &Value) -> bool {
    match v {
        Value::Bool(b) => *b,
        Value::String(s) => s.eq_ignore_ascii_case("true"),
        _ => false,
    }
}

pub(super) fn lenient_u64(v: &Value) -> Option<u64> {
    match v {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}
