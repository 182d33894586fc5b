//! SigV4: the `Authorization` header parsed, the signature recomputed and compared.

use super::account::{Caller, Inner};
use super::wire::*;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

// ---------------------------------------------------------------------------------------
// SigV4
// ---------------------------------------------------------------------------------------

/// How far `X-Amz-Date` may be from the server's clock.
pub(crate) const MAX_SKEW: Duration = Duration::from_secs(5 * 60);

/// The parts of an `Authorization: AWS4-HMAC-SHA256 ...` header.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Authorization {
    pub(crate) key_id: String,
    pub(crate) date: String,
    pub(crate) region: String,
    pub(crate) service: String,
    pub(crate) signed_headers: Vec<String>,
    pub(crate) signature: String,
}

pub(crate) fn parse_authorization(v: &str) -> Option<Authorization> {
    let rest = v.trim().strip_prefix("AWS4-HMAC-SHA256 ")?;
    let mut credential = None;
    let mut signed = None;
    let mut signature = None;
    for part in rest.split(',') {
        let (k, v) = part.trim().split_once('=')?;
        match k {
            "Credential" => credential = Some(v),
            "SignedHeaders" => signed = Some(v),
            "Signature" => signature = Some(v),
            _ => return None,
        }
    }
    let scope: Vec<&str> = credential?.split('/').collect();
    let [key_id, date, region, service, "aws4_request"] = scope.as_slice() else {
        return None;
    };
    let signature = signature?;
    let signed_headers: Vec<String> = signed?.split(';').map(str::to_string).collect();
    let ok = !key_id.is_empty()
        && date.len() == 8
        && date.bytes().all(|b| b.is_ascii_digit())
        && !region.is_empty()
        && !service.is_empty()
        && signature.len() == 64
        && signature
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        && signed_headers.iter().any(|h| h == "host")
        && signed_headers.iter().all(|h| {
            !h.is_empty()
                && h.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        });
    ok.then(|| Authorization {
        key_id: key_id.to_string(),
        date: date.to_string(),
        region: region.to_string(),
        service: service.to_string(),
        signed_headers,
        signature: signature.to_string(),
    })
}

/// A refused signature, as the protocol of the request shows it.
pub(crate) fn auth_error(json_protocol: bool, kind: AuthFailure, detail: &str) -> Response {
    let (query_code, json_code, json_status) = match kind {
        AuthFailure::Missing => (
            "MissingAuthenticationToken",
            "MissingAuthenticationTokenException",
            StatusCode::FORBIDDEN,
        ),
        AuthFailure::Incomplete => (
            "IncompleteSignature",
            "IncompleteSignatureException",
            StatusCode::BAD_REQUEST,
        ),
        AuthFailure::UnknownKey => (
            "InvalidClientTokenId",
            "UnrecognizedClientException",
            StatusCode::BAD_REQUEST,
        ),
        AuthFailure::Signature => (
            "SignatureDoesNotMatch",
            "InvalidSignatureException",
            StatusCode::BAD_REQUEST,
        ),
    };
    if json_protocol {
        AwsError::new(json_status, json_code, detail).json()
    } else {
        // As IAM's common errors list them: a malformed signature is a bad request, the
        // others are refusals.
        let status = if kind == AuthFailure::Incomplete {
            StatusCode::BAD_REQUEST
        } else {
            StatusCode::FORBIDDEN
        };
        AwsError::new(status, query_code, detail).query()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AuthFailure {
    Missing,
    Incomplete,
    UnknownKey,
    Signature,
}

pub(crate) const BAD_TOKEN: &str = "The security token included in the request is invalid.";
pub(crate) const BAD_SIGNATURE: &str = "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.";

/// Check the request's SigV4 signature; the caller goes into the request's extensions.
pub(crate) async fn authenticate(
    State(inner): State<Arc<Inner>>,
    req: Request,
    next: Next,
) -> Response {
    let (mut parts, body) = req.into_parts();
    let Ok(body) = axum::body::to_bytes(body, 16 * 1024 * 1024).await else {
        return AwsError::bad("ValidationError", "The request body could not be read").query();
    };
    let json_protocol = is_json(&parts.headers);
    let header = |name: &str| parts.headers.get(name).and_then(|v| v.to_str().ok());
    let Some(authz) = header("authorization") else {
        return auth_error(
            json_protocol,
            AuthFailure::Missing,
            "Request is missing Authentication Token",
        );
    };
    let Some(a) = parse_authorization(authz) else {
        return auth_error(
            json_protocol,
            AuthFailure::Incomplete,
            "Authorization header requires 'Credential', 'Signature' and 'SignedHeaders' (with host) parameters, in the AWS4-HMAC-SHA256 form.",
        );
    };
    let json_protocol = json_protocol || a.service == "identitystore";
    let Some(date) = header("x-amz-date").and_then(parse_amz_date) else {
        return auth_error(
            json_protocol,
            AuthFailure::Incomplete,
            "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header.",
        );
    };
    let now = SystemTime::now();
    let skew = now
        .duration_since(date)
        .or_else(|_| date.duration_since(now))
        .unwrap_or_default();
    if skew > MAX_SKEW {
        return auth_error(
            json_protocol,
            AuthFailure::Signature,
            &format!(
                "Signature expired: {} is now earlier or later than 5 minutes from {} (check this machine's clock).",
                header("x-amz-date").unwrap_or(""),
                chrono::DateTime::<chrono::Utc>::from(now).format("%Y%m%dT%H%M%SZ")
            ),
        );
    }
    if !header("x-amz-date").is_some_and(|d| d.starts_with(&a.date)) {
        return auth_error(
            json_protocol,
            AuthFailure::Signature,
            "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP.",
        );
    }
    if parts.headers.contains_key("x-amz-security-token") {
        // The simulator issues no temporary credentials.
        return auth_error(json_protocol, AuthFailure::UnknownKey, BAD_TOKEN);
    }
    let key = inner.lock().keys.get(&a.key_id).cloned();
    let Some(key) = key.filter(|k| k.active) else {
        return auth_error(json_protocol, AuthFailure::UnknownKey, BAD_TOKEN);
    };
    if inner.opts.verify_signatures {
        let path = parts
            .uri
            .path_and_query()
            .map(|p| p.as_str())
            .unwrap_or("/");
        match expected_signature(
            &a,
            &key.secret,
            parts.method.as_str(),
            path,
            &parts.headers,
            &body,
            date,
        ) {
            Some(sig) if sig == a.signature => {}
            _ => return auth_error(json_protocol, AuthFailure::Signature, BAD_SIGNATURE),
        }
    }
    parts.extensions.insert(Caller {
        user: key.user,
        service: a.service,
    });
    next.run(Request::from_parts(parts, axum::body::Body::from(body)))
        .await
}

pub(crate) fn parse_amz_date(s: &str) -> Option<SystemTime> {
    let t = chrono::NaiveDateTime::parse_from_str(s, "%Y%m%dT%H%M%SZ").ok()?;
    Some(SystemTime::from(t.and_utc()))
}

/// The signature the client should have sent, recomputed by the `aws-sigv4` crate from
/// what the request says it signed.
pub(crate) fn expected_signature(
    a: &Authorization,
    secret: &str,
    method: &str,
    path_and_query: &str,
    headers: &HeaderMap,
    body: &[u8],
    time: SystemTime,
) -> Option<String> {
    use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
    use aws_sigv4::sign::v4;
    let host = headers.get("host")?.to_str().ok()?;
    if host.is_empty()
        || !host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b))
    {
        return None;
    }
    let url = format!("http://{host}{path_and_query}");
    url.parse::<axum::http::Uri>().ok()?.authority()?;
    let mut signed: Vec<(&str, &str)> = Vec::new();
    for name in &a.signed_headers {
        // The signer adds these two itself (from the time, and the session token).
        if name == "x-amz-date" || name == "x-amz-security-token" {
            continue;
        }
        let values = headers.get_all(name.as_str());
        let mut any = false;
        for v in values {
            signed.push((name.as_str(), v.to_str().ok()?));
            any = true;
        }
        if !any {
            return None;
        }
    }
    let creds = aws_credential_types::Credentials::new(
        a.key_id.clone(),
        secret.to_string(),
        None,
        None,
        "accessdesk-sim",
    );
    let identity: aws_smithy_runtime_api::client::identity::Identity = creds.into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(&a.region)
        .name(&a.service)
        .time(time)
        .settings(SigningSettings::default())
        .build()
        .ok()?
        .into();
    let req = SignableRequest::new(
        method,
        url.as_str(),
        signed.into_iter(),
        SignableBody::Bytes(body),
    )
    .ok()?;
    let (_, signature) = sign(req, &params).ok()?.into_parts();
    Some(signature)
}
