//! What the AWS adapters share: SigV4 signing (through the `aws-sigv4` crate), credentials
//! from the keychain, settings, error extraction and classification for both AWS wire
//! protocols (query/XML for IAM and STS, JSON 1.1 for the identity store), small XML helpers
//! and `sts:GetCallerIdentity`.
//!
//! ## Credential format
//!
//! The keychain entry (or `env:VAR`) named by `credential` holds one line:
//!
//! ```text
//! ACCESS_KEY_ID:SECRET_ACCESS_KEY
//! ACCESS_KEY_ID:SECRET_ACCESS_KEY:SESSION_TOKEN     (temporary credentials)
//! ```
//!
//! Access key ids are 16-128 characters of `[A-Za-z0-9_]`; secret keys and session tokens
//! (base64) never contain `:`. Surrounding whitespace is ignored. A value of another shape
//! is refused with a message that names the entry and the expected format and never shows
//! any part of the value.

use super::AResult;
use super::auth::Auth;
use super::error::{AdapterError, ErrorClass};
use super::http::{HttpClient, Req, RetryPolicy, redact_url, retry_after};
use super::kit::errors::VendorProfile;
use crate::secrets::Secret;
use async_trait::async_trait;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use std::time::{Duration, SystemTime};

/// How the keychain entry must look (shown in errors and docs).
pub const CREDENTIAL_FORMAT: &str =
    "ACCESS_KEY_ID:SECRET_ACCESS_KEY (or ACCESS_KEY_ID:SECRET_ACCESS_KEY:SESSION_TOKEN)";

/// The region used when systems.toml sets none.
pub const DEFAULT_REGION: &str = "us-east-1";

/// STS query API version (GetCallerIdentity).
pub const STS_API_VERSION: &str = "2011-06-15";

// ---------------------------------------------------------------------------------------
// Credentials
// ---------------------------------------------------------------------------------------

/// An access key pair, parsed from a keychain entry.
#[derive(Clone)]
pub struct AwsCredentials {
    pub access_key_id: String,
    pub secret_access_key: Secret,
    pub session_token: Option<Secret>,
}

impl std::fmt::Debug for AwsCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AwsCredentials")
            .field("access_key_id", &"[redacted]")
            .field("secret_access_key", &self.secret_access_key)
            .field("session_token", &self.session_token)
            .finish()
    }
}

/// Parse `ACCESS_KEY_ID:SECRET_ACCESS_KEY[:SESSION_TOKEN]`. `source` names the entry
/// (`keyring:aws-prod`) for the error; the error never contains any part of the value.
pub fn parse_credentials(secret: &Secret, source: &str) -> Result<AwsCredentials, String> {
    let value = secret.expose().trim();
    let bad = |why: &str| {
        format!("the credential in {source} is not in the form {CREDENTIAL_FORMAT}: {why}")
    };
    if value.is_empty() {
        return Err(bad("it is empty"));
    }
    let parts: Vec<&str> = value.split(':').collect();
    if parts.len() < 2 || parts.len() > 3 {
        return Err(bad(&format!(
            "it has {} ':'-separated part(s), expected 2 or 3",
            parts.len()
        )));
    }
    let key_id = parts[0];
    if key_id.len() < 16
        || key_id.len() > 128
        || !key_id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_')
    {
        return Err(bad(
            "the access key id must be 16-128 letters, digits or '_' (like AKIA...)",
        ));
    }
    let no_space =
        |s: &str| !s.is_empty() && !s.chars().any(|c| c.is_whitespace() || c.is_control());
    if !no_space(parts[1]) {
        return Err(bad("the secret access key is empty or contains whitespace"));
    }
    if parts.len() == 3 && !no_space(parts[2]) {
        return Err(bad("the session token is empty or contains whitespace"));
    }
    Ok(AwsCredentials {
        access_key_id: key_id.to_string(),
        secret_access_key: Secret::new(parts[1]),
        session_token: parts.get(2).map(|t| Secret::new(*t)),
    })
}

// ---------------------------------------------------------------------------------------
// SigV4
// ---------------------------------------------------------------------------------------

/// Signs each final request (method, URL, headers, body bytes) with AWS Signature V4, via
/// the `aws-sigv4` crate. Signing happens per attempt, so retries carry a fresh date.
pub struct SigV4Auth {
    /// The signing name (`iam`, `identitystore`, `sts`).
    pub service: String,
    pub region: String,
    pub access_key_id: String,
    pub secret: Secret,
    pub session_token: Option<Secret>,
    /// Where the credential came from (`keyring:aws-prod`), for error messages.
    pub source: String,
}

impl SigV4Auth {
    pub fn new(service: &str, region: &str, creds: &AwsCredentials, source: &str) -> Self {
        SigV4Auth {
            service: service.to_string(),
            region: region.to_string(),
            access_key_id: creds.access_key_id.clone(),
            secret: creds.secret_access_key.clone(),
            session_token: creds.session_token.clone(),
            source: source.to_string(),
        }
    }

    /// Sign `req` as of `time`: adds `x-amz-date`, `authorization` and, with a session
    /// token, `x-amz-security-token`. Every header already on the request is signed.
    pub fn sign_at(&self, req: &mut reqwest::Request, time: SystemTime) -> AResult<()> {
        use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
        use aws_sigv4::sign::v4;
        let fail = |what: String| AdapterError::new(ErrorClass::Permanent, "", what);
        if req.url().host_str().is_none() {
            return Err(fail(format!(
                "cannot sign a request without a host: {}",
                redact_url(req.url().as_str())
            )));
        }
        let body: &[u8] = match req.body() {
            None => &[],
            Some(b) => b
                .as_bytes()
                .ok_or_else(|| fail("cannot sign a streaming request body".to_string()))?,
        };
        let mut headers: Vec<(&str, &str)> = Vec::new();
        for (k, v) in req.headers() {
            let v = v.to_str().map_err(|_| {
                fail(format!(
                    "header {k} is not visible ASCII and cannot be signed"
                ))
            })?;
            headers.push((k.as_str(), v));
        }
        let creds = aws_credential_types::Credentials::new(
            self.access_key_id.clone(),
            self.secret.expose().to_string(),
            self.session_token.as_ref().map(|t| t.expose().to_string()),
            None,
            "accessdesk-keychain",
        );
        let identity: aws_smithy_runtime_api::client::identity::Identity = creds.into();
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region(&self.region)
            .name(&self.service)
            .time(time)
            .settings(SigningSettings::default())
            .build()
            .map_err(|e| fail(format!("SigV4 parameters: {e}")))?
            .into();
        let method = req.method().as_str().to_string();
        let url = req.url().as_str().to_string();
        let signable = SignableRequest::new(
            &method,
            url.as_str(),
            headers.into_iter(),
            SignableBody::Bytes(body),
        )
        .map_err(|e| fail(format!("SigV4: {e}")))?;
        let (instructions, _signature) = sign(signable, &params)
            .map_err(|e| fail(format!("SigV4: {e}")))?
            .into_parts();
        let (new_headers, _params) = instructions.into_parts();
        for h in new_headers {
            let name = HeaderName::from_static(h.name());
            let mut value = HeaderValue::from_str(h.value())
                .map_err(|_| fail(format!("SigV4 produced an invalid {} header", h.name())))?;
            value.set_sensitive(h.sensitive() || name == reqwest::header::AUTHORIZATION);
            req.headers_mut().insert(name, value);
        }
        Ok(())
    }
}

#[async_trait]
impl Auth for SigV4Auth {
    async fn authorize(&self, req: &mut reqwest::Request) -> AResult<()> {
        self.sign_at(req, SystemTime::now())
    }
    fn source(&self) -> String {
        self.source.clone()
    }
}

// ---------------------------------------------------------------------------------------
// Settings
// ---------------------------------------------------------------------------------------

/// Settings both AWS adapters read from `[systems.NAME.settings]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommonSettings {
    pub region: String,
    /// `base_url` from systems.toml; None means the public AWS endpoint.
    pub base_url: Option<String>,
}

/// A region name as AWS spells them (`us-east-1`, `eu-central-2`, `us-gov-west-1`).
pub fn valid_region(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 32
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

/// Check the `region` setting and read `base_url`; resolve the credential into an access
/// key pair.
pub fn common_settings(
    ctx: &super::kit::context::AdapterContext<'_>,
    region: Option<String>,
) -> crate::Result<(CommonSettings, AwsCredentials, String)> {
    let name = &ctx.entry.system.name;
    let region = region.unwrap_or_else(|| DEFAULT_REGION.to_string());
    if !valid_region(&region) {
        return Err(crate::Error::usage(
            format!("system {name}: settings.region {region:?} is not an AWS region name"),
            "use a region such as \"us-east-1\"",
        ));
    }
    let source = ctx.credential()?.to_string();
    let secret = ctx.secret()?;
    let creds = parse_credentials(&secret, &source).map_err(|m| {
        let hint = match source.split_once(':') {
            Some(("env", var)) => format!("set {var} to {CREDENTIAL_FORMAT}"),
            Some((_, entry)) => {
                format!("store it with `accessdesk secret set {entry}` as {CREDENTIAL_FORMAT}")
            }
            None => format!("the value must be {CREDENTIAL_FORMAT}"),
        };
        crate::Error::usage(format!("system {name}: {m}"), hint)
    })?;
    Ok((
        CommonSettings {
            region,
            base_url: ctx.entry.base_url.clone(),
        },
        creds,
        source,
    ))
}

/// Retries for AWS as `_retry.json` describes them: 5 attempts, exponential with full jitter.
pub fn default_retry() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 5,
        ..RetryPolicy::default()
    }
}

// ---------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------

/// What an AWS error response said.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AwsErrorBody {
    pub code: Option<String>,
    pub message: Option<String>,
    /// The identity store's `Reason` (UNIQUENESS_CONSTRAINT_VIOLATION, CONCURRENT_MODIFICATION).
    pub reason: Option<String>,
    /// The identity store's `RetryAfterSeconds`.
    pub retry_after_secs: Option<u64>,
    /// The body was read as a JSON or XML error document.
    pub structured: bool,
}

/// Codes `_retry.json` (and the SDKs) treat as throttling.
pub fn is_throttle_code(code: &str) -> bool {
    matches!(
        code,
        "Throttling"
            | "ThrottlingException"
            | "ThrottledException"
            | "RequestThrottledException"
            | "RequestThrottled"
            | "TooManyRequestsException"
            | "RequestLimitExceeded"
            | "ProvisionedThroughputExceededException"
            | "SlowDown"
            | "BandwidthLimitExceeded"
            | "PriorRequestNotComplete"
            | "EC2ThrottledException"
    )
}

/// Codes that mean the credential itself was refused.
pub fn is_auth_code(code: &str) -> bool {
    matches!(
        code,
        "SignatureDoesNotMatch"
            | "InvalidClientTokenId"
            | "ExpiredToken"
            | "ExpiredTokenException"
            | "UnrecognizedClientException"
            | "UnrecognizedClient"
            | "InvalidSignatureException"
            | "IncompleteSignature"
            | "IncompleteSignatureException"
            | "MissingAuthenticationToken"
            | "MissingAuthenticationTokenException"
            | "InvalidAccessKeyId"
            | "AuthFailure"
            | "InvalidToken"
    )
}

/// Strip a JSON `__type` / `x-amzn-ErrorType` down to the bare code:
/// `com.amazonaws.identitystore#ConflictException` and
/// `ThrottlingException:http://internal.amazon.com/coral/...` both name one code.
pub fn bare_code(raw: &str) -> String {
    let s = raw.rsplit('#').next().unwrap_or(raw);
    let s = s.split(':').next().unwrap_or(s);
    s.trim().to_string()
}

/// Read an error response of either protocol: JSON (`__type`, `message`/`Message`,
/// `Reason`, `RetryAfterSeconds`), XML (`<Error><Code>` anywhere in the document, which
/// covers IAM's `<ErrorResponse><Error>` and moto's `<ErrorResponse><Errors><Error>`), and
/// the `x-amzn-ErrorType` header as the last resort for the code.
pub fn extract_error(headers: &HeaderMap, body: &[u8]) -> AwsErrorBody {
    let mut out = AwsErrorBody::default();
    let text = std::str::from_utf8(body)
        .unwrap_or("")
        .trim_start_matches('\u{feff}');
    let trimmed = text.trim_start();
    if trimmed.starts_with('{') {
        if let Ok(serde_json::Value::Object(m)) = serde_json::from_str::<serde_json::Value>(trimmed)
        {
            let s = |k: &str| m.get(k).and_then(|v| v.as_str()).map(str::to_string);
            out.code = s("__type")
                .or_else(|| s("code"))
                .or_else(|| s("Code"))
                .map(|c| bare_code(&c));
            out.message = s("message").or_else(|| s("Message"));
            out.reason = s("Reason");
            out.retry_after_secs = m.get("RetryAfterSeconds").and_then(|v| v.as_u64());
            out.structured = out.code.is_some();
        }
    } else if trimmed.starts_with('<')
        && let Ok(doc) = roxmltree::Document::parse(trimmed)
        && let Some(err) = doc
            .descendants()
            .find(|n| n.is_element() && n.tag_name().name() == "Error")
    {
        out.code = child_text(err, "Code").map(|c| c.trim().to_string());
        out.message = child_text(err, "Message");
        out.structured = out.code.is_some();
    }
    if out.code.as_deref().is_none_or(str::is_empty) {
        out.code = headers
            .get("x-amzn-errortype")
            .and_then(|v| v.to_str().ok())
            .map(bare_code)
            .filter(|c| !c.is_empty());
    }
    out
}

/// The class of an AWS error code, or None when the code is not one we know.
pub fn class_for_code(code: &str, reason: Option<&str>) -> Option<ErrorClass> {
    if is_throttle_code(code) {
        return Some(ErrorClass::RateLimited { retry_after: None });
    }
    if is_auth_code(code) {
        return Some(ErrorClass::Unauthorized);
    }
    Some(match code {
        "EntityAlreadyExists" => ErrorClass::Conflict,
        // The identity store uses ConflictException both for duplicates and for two writes
        // racing; only the second is worth retrying.
        "ConflictException" => match reason {
            Some("CONCURRENT_MODIFICATION") => ErrorClass::Transient,
            _ => ErrorClass::Conflict,
        },
        "NoSuchEntity" | "ResourceNotFoundException" => ErrorClass::NotFound,
        "ServiceUnavailable"
        | "ServiceUnavailableException"
        | "ServiceFailure"
        | "InternalFailure"
        | "InternalError"
        | "InternalServerError"
        | "InternalServerException"
        | "RequestTimeout"
        | "RequestTimeoutException"
        | "ConcurrentModification"
        | "EntityTemporarilyUnmodifiable"
        | "IDPCommunicationError" => ErrorClass::Transient,
        "AccessDenied"
        | "AccessDeniedException"
        | "LimitExceeded"
        | "ValidationError"
        | "ValidationException"
        | "MalformedInput"
        | "InvalidInput"
        | "InvalidParameterValue"
        | "InvalidParameterCombination"
        | "MissingParameter"
        | "InvalidAction"
        | "InvalidQueryParameter"
        | "OptInRequired"
        | "RequestExpired"
        | "ServiceQuotaExceededException"
        | "UnmodifiableEntity"
        | "DeleteConflict"
        | "PasswordPolicyViolation"
        | "NotImplemented" => ErrorClass::Permanent,
        _ => return None,
    })
}

/// The class of a response whose code is unknown or missing, by status alone.
pub fn class_for_status(status: u16, headers: &HeaderMap) -> ErrorClass {
    match status {
        429 | 509 => ErrorClass::RateLimited {
            retry_after: retry_after(headers),
        },
        401 => ErrorClass::Unauthorized,
        408 | 500..=599 => ErrorClass::Transient,
        _ => ErrorClass::Permanent,
    }
}

/// Classify a non-2xx AWS response. `what` names the document expected (for bodies that
/// are not an AWS error at all: an HTML page from a proxy, a truncated body).
pub fn classify_aws(
    system: &str,
    source: &str,
    status: u16,
    headers: &HeaderMap,
    body: &[u8],
    what: &str,
) -> AdapterError {
    let parsed = extract_error(headers, body);
    let Some(code) = parsed.code.clone() else {
        // Not an AWS error document and no error-type header.
        let mut e = AdapterError::bad_response(system, status, what, body);
        if matches!(status, 429 | 509) {
            e.class = ErrorClass::RateLimited {
                retry_after: retry_after(headers),
            };
        }
        return e;
    };
    let mut class = class_for_code(&code, parsed.reason.as_deref())
        .unwrap_or_else(|| class_for_status(status, headers));
    if let ErrorClass::RateLimited { retry_after: ra } = &mut class {
        *ra = retry_after(headers).or(parsed.retry_after_secs.map(Duration::from_secs));
    }
    let vendor_msg = parsed
        .message
        .clone()
        .filter(|m| !m.trim().is_empty())
        .unwrap_or_else(|| format!("HTTP {status}"));
    let message = match code.as_str() {
        "AccessDenied" | "AccessDeniedException" => format!(
            "{vendor_msg} (the credential from {source} was accepted but lacks this permission: \
             grant it in the policy of that IAM principal)"
        ),
        "RequestExpired" | "InvalidSignatureException"
            if vendor_msg.to_ascii_lowercase().contains("expired")
                || vendor_msg.to_ascii_lowercase().contains("time") =>
        {
            format!("{vendor_msg} (check this machine's clock: SigV4 allows 5 minutes of skew)")
        }
        c if is_throttle_code(c) => format!("{vendor_msg} (AWS throttled the request)"),
        _ => vendor_msg,
    };
    AdapterError::new(class, system, message)
        .with_status(status)
        .with_code(code)
        .with_excerpt(body)
}

/// The rate signal of an AWS response: Retry-After and 429 as usual, plus `throttled` for
/// the throttling codes, which come without any header telling how long to wait (the
/// limiter then halves its rate: AIMD).
pub fn aws_rate_signal(status: u16, headers: &HeaderMap, body: &[u8]) -> super::http::RateSignal {
    let mut s = super::http::RateSignal::generic(status, headers);
    if !(200..300).contains(&status)
        && let Some(code) = extract_error(headers, body).code
        && is_throttle_code(&code)
    {
        s.throttled = true;
    }
    s
}

/// The vendor profile of both AWS protocols (they differ only in what a success body is).
pub struct AwsProfile {
    /// Where the credential came from, for AccessDenied hints.
    pub source: String,
    /// What a response should have been, for unreadable bodies ("an IAM XML response").
    pub what: &'static str,
}

impl VendorProfile for AwsProfile {
    fn rate_signal(
        &self,
        status: u16,
        headers: &HeaderMap,
        body: &[u8],
    ) -> super::http::RateSignal {
        aws_rate_signal(status, headers, body)
    }
    fn classify(
        &self,
        system: &str,
        status: u16,
        headers: &HeaderMap,
        body: &[u8],
    ) -> AdapterError {
        classify_aws(system, &self.source, status, headers, body, self.what)
    }
}

// ---------------------------------------------------------------------------------------
// XML (query protocol) helpers
// ---------------------------------------------------------------------------------------

/// The first child element named `name` (namespace ignored).
pub fn child<'a, 'i>(node: roxmltree::Node<'a, 'i>, name: &str) -> Option<roxmltree::Node<'a, 'i>> {
    node.children()
        .find(|n| n.is_element() && n.tag_name().name() == name)
}

/// The text of the child element `name` ("" for an empty element), or None if absent.
pub fn child_text(node: roxmltree::Node<'_, '_>, name: &str) -> Option<String> {
    child(node, name).map(|c| c.text().unwrap_or("").to_string())
}

/// The `<member>` elements of the list child `name`.
pub fn members<'a, 'i>(node: roxmltree::Node<'a, 'i>, name: &str) -> Vec<roxmltree::Node<'a, 'i>> {
    child(node, name)
        .map(|l| {
            l.children()
                .filter(|n| n.is_element() && n.tag_name().name() == "member")
                .collect()
        })
        .unwrap_or_default()
}

/// Parse a 2xx query-protocol body and hand its `<{action}Result>` element (or the root
/// element when the action returns no result) to `f`. A body that is not XML, is another
/// action's response, or that `f` rejects (None) is a classified error with an excerpt.
pub fn with_result<T>(
    system: &str,
    action: &str,
    status: u16,
    body: &[u8],
    f: impl FnOnce(roxmltree::Node<'_, '_>) -> Option<T>,
) -> AResult<T> {
    let what = format!("an AWS {action}Response XML document");
    let bad = || AdapterError::bad_response(system, status, &what, body);
    let text = std::str::from_utf8(body).map_err(|_| bad())?;
    let doc = roxmltree::Document::parse(text.trim_start_matches('\u{feff}')).map_err(|_| bad())?;
    let root = doc.root_element();
    if root.tag_name().name() != format!("{action}Response") {
        return Err(bad());
    }
    let node = child(root, &format!("{action}Result")).unwrap_or(root);
    f(node).ok_or_else(bad)
}

/// The next-page marker of a paginated query result: Some when `IsTruncated` is true
/// (a truncated page without a Marker is malformed: None inside the outer Some).
pub fn next_marker(result: roxmltree::Node<'_, '_>) -> Option<Option<String>> {
    match child_text(result, "IsTruncated").as_deref().map(str::trim) {
        Some("true") => match child_text(result, "Marker") {
            Some(m) if !m.is_empty() => Some(Some(m)),
            _ => None,
        },
        None | Some("false") => Some(None),
        Some(_) => None,
    }
}

/// Query-protocol parameters for one action.
pub fn query(action: &str, version: &str, params: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut v = vec![
        ("Action".to_string(), action.to_string()),
        ("Version".to_string(), version.to_string()),
    ];
    v.extend(params.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    v
}

/// The caller's identity from `sts:GetCallerIdentity`: (ARN, account, user id).
pub async fn get_caller_identity(sts: &HttpClient) -> AResult<(String, String, String)> {
    let resp = sts
        .send(Req::post("/").form(query("GetCallerIdentity", STS_API_VERSION, &[])))
        .await?;
    with_result(
        sts.system(),
        "GetCallerIdentity",
        resp.status,
        &resp.body,
        |r| {
            Some((
                child_text(r, "Arn").filter(|s| !s.is_empty())?,
                child_text(r, "Account").unwrap_or_default(),
                child_text(r, "UserId").unwrap_or_default(),
            ))
        },
    )
}

/// The account id in an ARN (`arn:aws:iam::123456789012:user/bob`).
pub fn arn_account(arn: &str) -> Option<&str> {
    arn.split(':').nth(4).filter(|a| !a.is_empty())
}

#[cfg(test)]
mod tests;
