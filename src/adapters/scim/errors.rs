//! SCIM error bodies (RFC 7644 §3.12) and the answers that are not what was asked for.

use super::*;

// ---------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------

/// The parts of a SCIM error body (RFC 7644 §3.12) we use.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ScimErrorBody {
    pub scim_type: Option<String>,
    pub detail: Option<String>,
    /// `status` as the body states it (a string per the RFC; some providers send a number).
    pub status: Option<u16>,
}

/// Read a SCIM error body; also takes the `detail`/`message` of non-SCIM JSON errors
/// (gateways, the fault proxy). None when the body is not a JSON object.
pub fn parse_error_body(body: &[u8]) -> Option<ScimErrorBody> {
    let v: Value = serde_json::from_slice(body).ok()?;
    let obj = v.as_object()?;
    let text = |k: &str| {
        obj.get(k)
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    };
    Some(ScimErrorBody {
        scim_type: text("scimType"),
        detail: text("detail")
            .or_else(|| text("message"))
            .or_else(|| text("error_description"))
            .or_else(|| text("error")),
        status: obj
            .get("status")
            .and_then(lenient_u64)
            .and_then(|n| u16::try_from(n).ok()),
    })
}

pub(super) fn looks_html(body: &[u8]) -> bool {
    let head: Vec<u8> = body
        .iter()
        .skip_while(|b| b.is_ascii_whitespace())
        .take(64)
        .copied()
        .collect::<Vec<u8>>()
        .to_ascii_lowercase();
    head.windows(5).any(|w| w == b"<html" || w == b"<!doc")
}

/// Classify a non-2xx SCIM response.
///
/// 401 Unauthorized; 403 Permanent (the token works but may not do this); 404 NotFound;
/// 409 Conflict (`uniqueness`); 412 Permanent with code `preconditionFailed` (the adapter
/// re-reads and retries once, then reports Transient; see the module docs); 429 RateLimited
/// with Retry-After; 501 Permanent (`notImplemented`: the provider lacks the operation);
/// other 5xx Transient; 400 and other 4xx Permanent with `scimType` as the vendor code.
pub fn classify_error(system: &str, status: u16, headers: &HeaderMap, body: &[u8]) -> AdapterError {
    let parsed = parse_error_body(body);
    let detail = parsed
        .as_ref()
        .and_then(|p| p.detail.clone())
        .map(|d| redact_text(&d))
        .unwrap_or_default();
    let mut code = parsed.as_ref().and_then(|p| p.scim_type.clone());
    let mut message = if !detail.is_empty() {
        detail
    } else if looks_html(body) {
        "the response is an HTML page (a proxy or gateway answered instead of the SCIM API)".into()
    } else if body.iter().all(u8::is_ascii_whitespace) {
        String::new()
    } else if parsed.is_none() {
        "the error body is not a SCIM error (not JSON)".into()
    } else {
        String::new()
    };
    match status {
        403 => {
            message = format!(
                "the token is valid but not allowed to do this{}",
                if message.is_empty() {
                    String::new()
                } else {
                    format!(": {message}")
                }
            )
        }
        412 => {
            code.get_or_insert_with(|| "preconditionFailed".into());
        }
        501 => {
            code.get_or_insert_with(|| "notImplemented".into());
        }
        _ => {}
    }
    let mut e = classify_status(system, status, headers, body, code, message);
    if status == 501 {
        e.class = ErrorClass::Permanent;
    }
    e
}

/// The SCIM vendor profile: generic rate signals (429 + Retry-After), SCIM error bodies.
pub struct ScimProfile;

impl VendorProfile for ScimProfile {
    fn classify(
        &self,
        system: &str,
        status: u16,
        headers: &HeaderMap,
        body: &[u8],
    ) -> AdapterError {
        classify_error(system, status, headers, body)
    }
}

/// A 2xx body that is not JSON: truncated (Transient, per the shared rule) unless it is an
/// HTML page, which on a 2xx means base_url points at a web page (Permanent).
pub(super) fn unreadable(system: &str, resp: &HttpResponse, what: &str) -> AdapterError {
    let mut e = AdapterError::bad_response(system, resp.status, what, &resp.body);
    if (200..300).contains(&resp.status) && looks_html(&resp.body) {
        e.class = ErrorClass::Permanent;
        e.message
            .push_str("; is base_url the SCIM root (e.g. https://host/scim/v2)?");
    }
    e
}

/// JSON that parsed but is not what we asked for. Retrying will not change it.
pub(super) fn wrong_shape(
    system: &str,
    resp: &HttpResponse,
    what: &str,
    problem: &str,
) -> AdapterError {
    AdapterError::new(
        ErrorClass::Permanent,
        system,
        format!("expected {what}, but {problem}"),
    )
    .with_status(resp.status)
    .with_excerpt(&resp.body)
}

/// Parse a body that must be one JSON object.
pub fn parse_object(system: &str, resp: &HttpResponse, what: &str) -> AResult<Map<String, Value>> {
    let v: Value =
        serde_json::from_slice(&resp.body).map_err(|_| unreadable(system, resp, what))?;
    match v {
        Value::Object(m) => Ok(m),
        _ => Err(wrong_shape(
            system,
            resp,
            what,
            "the body is not a JSON object",
        )),
    }
}

/// One page of a ListResponse (RFC 7644 §3.4.2).
#[derive(Debug, Clone, PartialEq)]
pub struct ListPage {
    pub resources: Vec<Value>,
    pub total: Option<u64>,
}

pub fn parse_list(system: &str, resp: &HttpResponse, what: &str) -> AResult<ListPage> {
    let obj = parse_object(system, resp, what)?;
    let total = obj.get("totalResults").and_then(lenient_u64);
    let resources = match obj.get("Resources") {
        Some(Value::Array(a)) => a.clone(),
        // RFC 7644: Resources is REQUIRED only when totalResults is not zero.
        None | Some(Value::Null) if total.is_some() => Vec::new(),
        None | Some(Value::Null) => {
            return Err(wrong_shape(
                system,
                resp,
                what,
                "it is not a ListResponse (no totalResults, no Resources)",
            ));
        }
        Some(_) => {
            return Err(wrong_shape(
                system,
                resp,
                what,
                "\"Resources\" is not a list",
            ));
        }
    };
    if let Some(bad) = resources.iter().position(|r| !r.is_object()) {
        return Err(wrong_shape(
            system,
            resp,
            what,
            &format!("Resources[{bad}] is not an object"),
        ));
    }
    Ok(ListPage { resources, total })
}

/// The next startIndex: from totalResults, or (when a provider omits it) from a full page.
pub(super) fn next_start(
    start: u64,
    requested: u32,
    items: usize,
    total: Option<u64>,
) -> Option<u64> {
    match total {
        Some(t) => scim_next_start(start, items as u64, t),
        None => (items > 0 && items as u64 >= requested as u64).then_some(start + items as u64),
    }
}
