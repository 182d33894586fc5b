//! AWS's wire shapes in both protocols: errors, query-protocol and JSON 1.1 answers, ids.

use crate::sim::fault::{
    ThrottleStyle, aws_json_response, aws_query_error, request_id, xml_escape,
};
use crate::sim::rules::VendorBodies;
use axum::extract::Request;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use rand::Rng;
use serde_json::json;
use std::collections::BTreeMap;

pub const IAM_XMLNS: &str = "https://iam.amazonaws.com/doc/2010-05-08/";
pub const STS_XMLNS: &str = "https://sts.amazonaws.com/doc/2011-06-15/";
pub const IAM_VERSION: &str = "2010-05-08";
pub const STS_VERSION: &str = "2011-06-15";

// ---------------------------------------------------------------------------------------
// Responses in both protocols
// ---------------------------------------------------------------------------------------

pub(crate) fn is_json(h: &HeaderMap) -> bool {
    h.contains_key("x-amz-target")
}

/// An error in the protocol the request used.
#[derive(Debug, Clone)]
pub(crate) struct AwsError {
    pub(crate) status: StatusCode,
    pub(crate) code: String,
    pub(crate) message: String,
    /// Extra members of a JSON error (`Reason`, `ResourceType`, ...).
    pub(crate) extra: serde_json::Map<String, serde_json::Value>,
}

impl AwsError {
    pub(crate) fn new(status: StatusCode, code: &str, message: impl Into<String>) -> Self {
        AwsError {
            status,
            code: code.to_string(),
            message: message.into(),
            extra: serde_json::Map::new(),
        }
    }
    pub(crate) fn bad(code: &str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }
    /// An extra member of the JSON error body (`Reason`, `ResourceType`, ...).
    pub(crate) fn with(mut self, key: &str, value: impl Into<serde_json::Value>) -> Self {
        self.extra.insert(key.to_string(), value.into());
        self
    }
    pub(crate) fn query(&self) -> Response {
        let kind = if self.status.is_server_error() {
            "Receiver"
        } else {
            "Sender"
        };
        aws_query_error(self.status, kind, &self.code, &self.message)
    }
    pub(crate) fn json(&self) -> Response {
        let mut body =
            json!({"__type": self.code, "Message": self.message, "RequestId": request_id()});
        for (k, v) in &self.extra {
            body[k] = v.clone();
        }
        aws_json_response(self.status, &self.code, body)
    }
}

/// A query-protocol success: `<{action}Response xmlns=NS>[<{action}Result>result</...>]
/// <ResponseMetadata>...`.
pub(crate) fn query_ok(action: &str, ns: &str, result: Option<String>) -> Response {
    let result = result
        .map(|r| format!("<{action}Result>{r}</{action}Result>"))
        .unwrap_or_default();
    let body = format!(
        "<{action}Response xmlns=\"{ns}\">{result}<ResponseMetadata><RequestId>{}</RequestId></ResponseMetadata></{action}Response>",
        request_id()
    );
    let mut r = (StatusCode::OK, body).into_response();
    r.headers_mut()
        .insert("content-type", HeaderValue::from_static("text/xml"));
    r
}

/// `<name>escaped text</name>`.
pub(crate) fn el(name: &str, text: &str) -> String {
    format!("<{name}>{}</{name}>", xml_escape(text))
}

pub(crate) fn json_ok(body: serde_json::Value) -> Response {
    let mut r = (StatusCode::OK, body.to_string()).into_response();
    r.headers_mut().insert(
        "content-type",
        HeaderValue::from_static("application/x-amz-json-1.1"),
    );
    r
}

/// AWS's shapes for [`FailRule`] faults, by the protocol of the request.
pub(crate) struct AwsBodies;

impl VendorBodies for AwsBodies {
    fn malformed(&self, req: &HeaderMap) -> Response {
        let (ct, body) = if is_json(req) {
            (
                "application/x-amz-json-1.1",
                "{\"Users\":[{\"UserId\":\"12345".to_string(),
            )
        } else {
            (
                "text/xml",
                format!(
                    "<ListUsersResponse xmlns=\"{IAM_XMLNS}\"><ListUsersResult><Users><member><UserName>a"
                ),
            )
        };
        let mut r = (StatusCode::OK, body).into_response();
        r.headers_mut()
            .insert("content-type", HeaderValue::from_static(ct));
        r
    }
    fn unexpected_shape(&self, req: &HeaderMap) -> Response {
        if is_json(req) {
            json_ok(json!({"Users": "none", "UserId": 42, "GroupMemberships": {"x": 1}}))
        } else {
            query_ok(
                "Unexpected",
                IAM_XMLNS,
                Some("<Surprise>1</Surprise>".into()),
            )
        }
    }
    fn error(&self, req: &HeaderMap, status: StatusCode, code: &str, message: &str) -> Response {
        let e = AwsError::new(status, code, message);
        if is_json(req) { e.json() } else { e.query() }
    }
    fn server_error(&self, req: &HeaderMap) -> Response {
        ThrottleStyle::Aws.server_error(req)
    }
}

pub(crate) async fn not_found(req: Request) -> Response {
    let e = AwsError::new(
        StatusCode::NOT_FOUND,
        "UnknownOperationException",
        format!("No operation at {} {}", req.method(), req.uri().path()),
    );
    if is_json(req.headers()) {
        e.json()
    } else {
        e.query()
    }
}

/// The form parameters of a query-protocol request (body and URL query together).
pub(crate) type Params = BTreeMap<String, String>;

/// `PREFIX` + `n` characters of `[A-Z0-9]`, like IAM's unique ids and key ids.
pub(crate) fn aws_id(prefix: &str, n: usize) -> String {
    const CHARS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut rng = rand::rng();
    let tail: String = (0..n)
        .map(|_| CHARS[rng.random_range(0..CHARS.len())] as char)
        .collect();
    format!("{prefix}{tail}")
}

/// A random secret access key (40 characters of base64).
pub(crate) fn secret_key() -> String {
    const CHARS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut rng = rand::rng();
    (0..40)
        .map(|_| CHARS[rng.random_range(0..CHARS.len())] as char)
        .collect()
}

pub(crate) fn iso8601(t: chrono::DateTime<chrono::Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}
