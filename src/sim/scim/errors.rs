//! SCIM error bodies and responses (RFC 7644 §3.12).

use super::*;

// ---------------------------------------------------------------------------------------
// Errors and responses
// ---------------------------------------------------------------------------------------

/// A SCIM error (RFC 7644 §3.12).
#[derive(Debug, Clone, PartialEq)]
pub struct ScimError {
    pub status: StatusCode,
    pub scim_type: Option<String>,
    pub detail: String,
}

impl ScimError {
    pub(super) fn new(
        status: StatusCode,
        scim_type: Option<&str>,
        detail: impl Into<String>,
    ) -> Self {
        ScimError {
            status,
            scim_type: scim_type.map(str::to_string),
            detail: detail.into(),
        }
    }
    pub(super) fn bad(scim_type: &str, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, Some(scim_type), detail)
    }
    pub(super) fn not_found(kind: Kind, id: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            None,
            format!("{} {id} not found", kind.name()),
        )
    }
    pub(super) fn not_implemented(what: &str) -> Self {
        Self::new(
            StatusCode::NOT_IMPLEMENTED,
            None,
            format!("{what} is not supported by this service provider"),
        )
    }
    pub(super) fn body(&self) -> Value {
        let mut v = json!({
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"],
            "status": self.status.as_u16().to_string(),
            "detail": self.detail,
        });
        if let Some(t) = &self.scim_type {
            v["scimType"] = json!(t);
        }
        v
    }
    pub(super) fn response(&self) -> Response {
        scim_json(self.status, &self.body())
    }
}

pub(super) fn scim_json(status: StatusCode, v: &Value) -> Response {
    let mut r = (status, v.to_string()).into_response();
    r.headers_mut()
        .insert("content-type", HeaderValue::from_static(MEDIA_TYPE));
    r
}

/// What an operation answers: status, body, and the ETag / Location headers.
#[derive(Debug)]
pub(super) struct Reply {
    pub(super) status: StatusCode,
    pub(super) body: Option<Value>,
    pub(super) etag: Option<String>,
    pub(super) location: Option<String>,
}

impl Reply {
    pub(super) fn json(status: StatusCode, body: Value) -> Self {
        Reply {
            status,
            body: Some(body),
            etag: None,
            location: None,
        }
    }
    pub(super) fn response(self) -> Response {
        let mut r = match &self.body {
            Some(b) => scim_json(self.status, b),
            None => self.status.into_response(),
        };
        for (name, v) in [("etag", &self.etag), ("location", &self.location)] {
            if let Some(v) = v
                && let Ok(h) = HeaderValue::from_str(v)
            {
                r.headers_mut().insert(name, h);
            }
        }
        r
    }
}

pub(super) fn respond(r: Result<Reply, ScimError>) -> Response {
    match r {
        Ok(reply) => reply.response(),
        Err(e) => e.response(),
    }
}

/// SCIM's shapes for [`FailRule`] faults.
pub(super) struct ScimBodies;

impl VendorBodies for ScimBodies {
    fn malformed(&self, _req: &HeaderMap) -> Response {
        let mut r = (
            StatusCode::OK,
            format!("{{\"schemas\":[\"{SCHEMA_USER}\"],\"id\":\"2819c223-7f76"),
        )
            .into_response();
        r.headers_mut()
            .insert("content-type", HeaderValue::from_static(MEDIA_TYPE));
        r
    }
    fn unexpected_shape(&self, _req: &HeaderMap) -> Response {
        scim_json(
            StatusCode::OK,
            &json!({"id": 42, "userName": ["not", "a", "string"], "active": "maybe", "Resources": "none", "totalResults": "many"}),
        )
    }
    fn error(&self, _req: &HeaderMap, status: StatusCode, code: &str, message: &str) -> Response {
        let t = (!code.is_empty()).then_some(code);
        ScimError::new(status, t, message).response()
    }
    fn server_error(&self, _req: &HeaderMap) -> Response {
        scim_error(StatusCode::INTERNAL_SERVER_ERROR, "Internal server error")
    }
}
