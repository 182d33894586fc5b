//! Redaction of secrets in text meant for people: error messages, body excerpts, request
//! lines, URLs in the console, log events.
//!
//! Only what can hold a secret is replaced by `[redacted]`; everything else is kept, so an
//! error still says what an admin needs (paths, ids, logins, status codes, the vendor's
//! error code and message). What counts as a secret depends on where it appears:
//!
//! - **headers** (`Name: value` in text, or a header by name: [`is_secret_header`]):
//!   Authorization, Proxy-Authorization, Cookie, Set-Cookie, and API-key and token headers
//!   (`X-Api-Key`, `X-Auth-Token`, `X-Amz-Security-Token`, `Ocp-Apim-Subscription-Key`);
//! - **query parameters** ([`is_secret_param`]): every secret field name below, plus the
//!   short names URLs use for credentials: `token`, `key`, `sig`, `code` (an OAuth
//!   authorization code), `auth`, `assertion`. `X-Amz-Credential` keeps its scope (date,
//!   region, service) and loses only the access key id;
//! - **fields** of JSON, forms and XML ([`is_secret_field`]): names ending in password,
//!   secret, api key, private or secret key, signature, client assertion, or token (access,
//!   refresh, id, session, security ... but not a paging token such as `NextToken`); a
//!   secret field whose value is an object or array is redacted whole, which covers Okta's
//!   `credentials.password.value`; `true`, `false` and `null` are kept (they hold no secret);
//! - the credential after an **auth scheme** anywhere in text (`Bearer`, `SSWS`, `Basic`),
//!   but not an auth parameter (`Bearer realm="..."`);
//! - the password of a URL's **user info** (`https://user:[redacted]@host`).
//!
//! A vendor's `code` in a JSON body (an error code) is not a query parameter and is kept.
//!
//! This is a leaf module: it depends on nothing else in the crate, so every layer can use
//! it. `adapters::http` re-exports [`redact_url`] and [`redact_text`] for the adapters.

/// What a redacted value is replaced with.
pub const REDACTED: &str = "[redacted]";

/// Name endings that mark a secret field, parameter or header (names are compared
/// lowercased, without `-`, `_` and `.`).
const SECRET_SUFFIXES: &[&str] = &[
    "password",
    "passwd",
    "passphrase",
    "passcode",
    "secret",
    "apikey",
    "privatekey",
    "secretkey",
    "secretaccesskey",
    "signingkey",
    "subscriptionkey",
    "clientassertion",
    "signature",
    "sessionid",
];

/// Whole names that are secret fields.
const SECRET_FIELDS: &[&str] = &["pwd", "otp", "authorization", "cookie", "assertion"];

/// Names ending in "token" that are paging cursors, not credentials.
const PAGING_TOKENS: &[&str] = &[
    "nexttoken",
    "pagetoken",
    "nextpagetoken",
    "continuationtoken",
    "paginationtoken",
    "synctoken",
    "deltatoken",
    "skiptoken",
    "resumetoken",
    "starttoken",
];

/// Short query parameter names that carry credentials in URLs (and only there: a JSON
/// `code` is a vendor's error code).
const SECRET_PARAMS: &[&str] = &["key", "sig", "code", "auth", "assertion"];

/// Headers whose whole value is a credential.
const SECRET_HEADERS: &[&str] = &[
    "authorization",
    "proxyauthorization",
    "cookie",
    "setcookie",
    "apikey",
    "token",
];

/// Schemes whose next word is a credential.
const AUTH_SCHEMES: &[&str] = &["bearer", "ssws", "basic"];

/// Lowercase, without `-`, `_` and `.` (`X-Amz-Security-Token` -> `xamzsecuritytoken`).
fn norm(name: &str) -> String {
    name.chars()
        .filter(|c| !matches!(c, '-' | '_' | '.'))
        .flat_map(char::to_lowercase)
        .collect()
}

fn secret_token_name(n: &str) -> bool {
    n.ends_with("token") && !PAGING_TOKENS.contains(&n)
}

/// A JSON, form or XML field whose value is a secret (`password`, `client_secret`,
/// `access_token`, `private_key`, `client_assertion`, `SecretAccessKey`, ...).
pub fn is_secret_field(name: &str) -> bool {
    let n = norm(name);
    !n.is_empty()
        && (SECRET_FIELDS.contains(&n.as_str())
            || secret_token_name(&n)
            || SECRET_SUFFIXES.iter().any(|s| n.ends_with(s)))
}

/// A query parameter whose value is a secret: any secret field, and the short names
/// credentials travel under in URLs (`key`, `sig`, `code`, ...).
pub fn is_secret_param(name: &str) -> bool {
    SECRET_PARAMS.contains(&norm(name).as_str()) || is_secret_field(name)
}

/// A header whose value is a credential.
pub fn is_secret_header(name: &str) -> bool {
    let n = norm(name);
    if SECRET_HEADERS.contains(&n.as_str()) {
        return true;
    }
    // Vendor headers (`X-Api-Key`, `X-Auth-Token`, `Ocp-Apim-Subscription-Key`): only
    // hyphenated names, so that prose such as "password: too short" is left alone.
    name.contains('-')
        && (secret_token_name(&n)
            || (n.ends_with("key") && !n.ends_with("idempotencykey"))
            || n.ends_with("secret")
            || n.ends_with("password"))
}

/// A header value fit to show: unchanged, or for a credential header its scheme (when it
/// has one) and `[redacted]`.
pub fn redact_header(name: &str, value: &str) -> String {
    if !is_secret_header(name) {
        return value.to_string();
    }
    match value.trim().split_once(' ') {
        Some((scheme, _))
            if !scheme.is_empty()
                && scheme
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-') =>
        {
            format!("{scheme} {REDACTED}")
        }
        _ => REDACTED.to_string(),
    }
}

/// `X-Amz-Credential` (and SigV4's `Credential=`): the access key id before the first `/`
/// (or `%2F`) is redacted, the scope after it is kept.
fn is_credential_scope(name: &str) -> bool {
    matches!(norm(name).as_str(), "xamzcredential" | "credential")
}

/// Where the access key id of a credential scope ends.
fn scope_key_end(value: &str) -> usize {
    let slash = value.find('/');
    let encoded = value.to_ascii_lowercase().find("%2f");
    match (slash, encoded) {
        (Some(a), Some(b)) => a.min(b),
        (Some(a), None) | (None, Some(a)) => a,
        (None, None) => value.len(),
    }
}

/// Redact a URL or path: the values of secret query parameters, and the password of the
/// user info. Paths, hosts and other parameters are kept.
pub fn redact_url(u: &str) -> String {
    let (rest, fragment) = match u.split_once('#') {
        Some((r, f)) => (r, Some(f)),
        None => (u, None),
    };
    let (head, query) = match rest.split_once('?') {
        Some((h, q)) => (h, Some(q)),
        None => (rest, None),
    };
    let mut out = redact_userinfo(head);
    if let Some(q) = query {
        out.push('?');
        let pairs: Vec<String> = q.split('&').map(redact_pair).collect();
        out.push_str(&pairs.join("&"));
    }
    if let Some(f) = fragment {
        // A fragment can carry an implicit-flow token (`#access_token=...`).
        out.push('#');
        let pairs: Vec<String> = f.split('&').map(redact_pair).collect();
        out.push_str(&pairs.join("&"));
    }
    out
}

fn redact_pair(kv: &str) -> String {
    match kv.split_once('=') {
        Some((k, v)) if is_credential_scope(k) => {
            let end = scope_key_end(v);
            if end == 0 {
                kv.to_string()
            } else {
                format!("{k}={REDACTED}{}", &v[end..])
            }
        }
        Some((k, v)) if is_secret_param(k) && !v.is_empty() => format!("{k}={REDACTED}"),
        _ => kv.to_string(),
    }
}

/// `scheme://user:password@host...` -> `scheme://user:[redacted]@host...`.
fn redact_userinfo(head: &str) -> String {
    let Some(start) = head.find("://").map(|i| i + 3) else {
        return head.to_string();
    };
    let authority_end = head[start..]
        .find('/')
        .map(|i| start + i)
        .unwrap_or(head.len());
    let authority = &head[start..authority_end];
    let Some(at) = authority.rfind('@') else {
        return head.to_string();
    };
    let userinfo = &authority[..at];
    match userinfo.split_once(':') {
        Some((user, pass)) if !pass.is_empty() => {
            format!("{}{user}:{REDACTED}{}", &head[..start], &head[start + at..])
        }
        _ => head.to_string(),
    }
}

fn is_name_byte(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'_' | b'-' | b'.')
}

/// Where a plain (unquoted) value starting at `i` ends.
fn plain_value_end(b: &[u8], mut i: usize) -> usize {
    while i < b.len()
        && !b[i].is_ascii_whitespace()
        && !matches!(
            b[i],
            b'&' | b'"' | b'\'' | b',' | b';' | b'<' | b'>' | b'#' | b')' | b'}' | b']'
        )
    {
        i += 1;
    }
    i
}

/// The end of a quoted string whose opening quote is at `open` (the index of the closing
/// quote, or the end of a cut-off text).
fn quoted_end(b: &[u8], open: usize) -> usize {
    let q = b[open];
    let mut i = open + 1;
    while i < b.len() {
        match b[i] {
            b'\\' => i += 2,
            c if c == q => return i,
            _ => i += 1,
        }
    }
    b.len()
}

/// The end (exclusive) of the JSON object or array opening at `open`, strings respected.
fn balanced_end(b: &[u8], open: usize) -> usize {
    let mut depth = 0usize;
    let mut i = open;
    while i < b.len() {
        match b[i] {
            b'"' => i = quoted_end(b, i),
            b'{' | b'[' => depth += 1,
            b'}' | b']' => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    return i + 1;
                }
            }
            _ => {}
        }
        i += 1;
    }
    b.len()
}

fn skip_spaces(b: &[u8], mut i: usize) -> usize {
    while i < b.len() && (b[i] == b' ' || b[i] == b'\t') {
        i += 1;
    }
    i
}

/// The span of the secret value after a JSON-style `"name":`, the colon at `colon`.
fn json_value_span(b: &[u8], colon: usize) -> Option<(usize, usize)> {
    let v = skip_spaces(b, colon + 1);
    match b.get(v)? {
        b'"' | b'\'' => {
            let end = quoted_end(b, v);
            (end > v + 1).then_some((v + 1, end))
        }
        b'{' | b'[' => Some((v, balanced_end(b, v))),
        _ => {
            let end = plain_value_end(b, v);
            let word = &b[v..end];
            if word.is_empty() || matches!(word, b"true" | b"false" | b"null") {
                None
            } else {
                Some((v, end))
            }
        }
    }
}

/// After a credential header's colon: the rest of the line (a scheme and its
/// credentials, which may hold spaces and commas), up to a quote or the end of a JSON value.
fn header_value_span(b: &[u8], colon: usize, whole_line: bool) -> Option<(usize, usize)> {
    let v = skip_spaces(b, colon + 1);
    let end = if whole_line {
        let mut i = v;
        while i < b.len() && !matches!(b[i], b'\n' | b'\r' | b'"' | b'\'' | b'<' | b'}') {
            i += 1;
        }
        // Keep the spaces before whatever follows.
        while i > v && b[i - 1] == b' ' {
            i -= 1;
        }
        i
    } else {
        plain_value_end(b, v)
    };
    (end > v).then_some((v, end))
}

/// The credential after an auth scheme word ending at `end` (`Bearer abc`), unless it is
/// an auth parameter (`Bearer realm="x"`).
fn scheme_value_span(b: &[u8], end: usize) -> Option<(usize, usize)> {
    if b.get(end) != Some(&b' ') {
        return None;
    }
    let v = skip_spaces(b, end);
    let mut i = v;
    while i < b.len()
        && (b[i].is_ascii_alphanumeric() || matches!(b[i], b'.' | b'_' | b'~' | b'+' | b'/' | b'-'))
    {
        i += 1;
    }
    if i == v {
        return None;
    }
    // An auth parameter (`realm="x"`, `error=invalid_token`) is not a credential, nor is
    // a header name (`Bearer Authorization: ...`).
    if b.get(i) == Some(&b':')
        || b.get(i) == Some(&b'=')
            && b.get(i + 1)
                .is_some_and(|c| c.is_ascii_alphanumeric() || *c == b'"')
    {
        return None;
    }
    // Prose ("Bearer token expired", "Basic information") is not a credential: one is at
    // least 8 characters and has a digit, a symbol or an inner capital.
    let word = &b[v..i];
    let looks_like_credential = word.len() >= 8
        && word.iter().enumerate().any(|(k, c)| {
            c.is_ascii_digit() || !c.is_ascii_alphanumeric() || (k > 0 && c.is_ascii_uppercase())
        });
    if !looks_like_credential {
        return None;
    }
    while i < b.len() && b[i] == b'=' {
        i += 1;
    }
    Some((v, i))
}

/// The span to redact for the name at `start..end` of `s`, if it names a secret.
fn secret_after_name(s: &str, start: usize, end: usize) -> Option<(usize, usize)> {
    let b = s.as_bytes();
    let name = &s[start..end];
    let before = start.checked_sub(1).map(|i| b[i]);
    // A quoted name: `"password": ...` (JSON) or `'password': ...`.
    if let Some(q @ (b'"' | b'\'')) = before
        && b.get(end) == Some(&q)
    {
        let colon = skip_spaces(b, end + 1);
        if b.get(colon) == Some(&b':') && is_secret_field(name) {
            return json_value_span(b, colon);
        }
        return None;
    }
    let sep = skip_spaces(b, end);
    match b.get(sep) {
        // `name=value`: a query or form parameter after `?` or `&`, else a field.
        Some(b'=') if sep == end => {
            let v = end + 1;
            if is_credential_scope(name) {
                let value_end = plain_value_end(b, v);
                let key_end = v + scope_key_end(&s[v..value_end]);
                return (key_end > v).then_some((v, key_end));
            }
            let param = matches!(before, Some(b'?' | b'&'));
            let secret = if param {
                is_secret_param(name)
            } else {
                is_secret_field(name)
            };
            if !secret {
                return None;
            }
            let value_end = plain_value_end(b, v);
            (value_end > v).then_some((v, value_end))
        }
        // `Name: value`: a header.
        Some(b':') if is_secret_header(name) => {
            let n = norm(name);
            let whole_line = matches!(
                n.as_str(),
                "authorization" | "proxyauthorization" | "cookie" | "setcookie"
            );
            header_value_span(b, sep, whole_line)
        }
        _ if AUTH_SCHEMES.contains(&name.to_ascii_lowercase().as_str()) => {
            scheme_value_span(b, end)
        }
        _ => None,
    }
}

/// `<SecretAccessKey>value</SecretAccessKey>`: the span of the value, for a secret element.
fn xml_secret(s: &str, open: usize) -> Option<(usize, usize)> {
    let b = s.as_bytes();
    let name_start = open + 1;
    let mut i = name_start;
    while i < b.len() && (b[i].is_ascii_alphanumeric() || matches!(b[i], b'_' | b'-' | b':')) {
        i += 1;
    }
    if i == name_start || b.get(i) != Some(&b'>') {
        return None;
    }
    let name = &s[name_start..i];
    let local = name.rsplit(':').next().unwrap_or(name);
    if !is_secret_field(local) {
        return None;
    }
    let v = i + 1;
    let end = s[v..].find('<').map(|e| v + e).unwrap_or(s.len());
    (end > v).then_some((v, end))
}

/// Redact secrets in free text (a body excerpt, a vendor's message, a log line): secret
/// JSON, form and XML fields, secret query parameters, credential headers, and the
/// credential after an auth scheme. See the module documentation for the names.
pub fn redact_text(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = String::with_capacity(s.len());
    let mut copied = 0;
    let mut i = 0;
    while i < b.len() {
        let span = if b[i] == b'<' {
            xml_secret(s, i)
        } else if is_name_byte(b[i]) && (i == 0 || !is_name_byte(b[i - 1])) {
            let mut end = i;
            while end < b.len() && is_name_byte(b[end]) {
                end += 1;
            }
            match secret_after_name(s, i, end) {
                Some(span) => Some(span),
                None => {
                    i = end;
                    continue;
                }
            }
        } else {
            None
        };
        match span {
            Some((from, to)) => {
                out.push_str(&s[copied..from]);
                out.push_str(REDACTED);
                copied = to;
                i = to.max(i + 1);
            }
            None => i += 1,
        }
    }
    out.push_str(&s[copied..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn urls_lose_only_secret_values() {
        assert_eq!(
            redact_url("/oauth2/v1/token?client_assertion=abc.def&x=1"),
            "/oauth2/v1/token?client_assertion=[redacted]&x=1"
        );
        assert_eq!(
            redact_url("/api/v1/users?limit=200&after=00u123&search=profile.login%20eq%20%22a%22"),
            "/api/v1/users?limit=200&after=00u123&search=profile.login%20eq%20%22a%22"
        );
        // Paging tokens are cursors, not credentials.
        assert_eq!(
            redact_url("/?Action=ListUsers&NextToken=abc&MaxItems=5"),
            "/?Action=ListUsers&NextToken=abc&MaxItems=5"
        );
        assert_eq!(
            redact_url("https://cb.example.com/cb?code=s3cr3t&state=xyz"),
            "https://cb.example.com/cb?code=[redacted]&state=xyz"
        );
        assert_eq!(
            redact_url(
                "https://b.s3.amazonaws.com/k?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAEXAMPLE%2F20240101%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Signature=abc123&X-Amz-Security-Token=tok"
            ),
            "https://b.s3.amazonaws.com/k?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=[redacted]%2F20240101%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Signature=[redacted]&X-Amz-Security-Token=[redacted]"
        );
        assert_eq!(
            redact_url("https://admin:hunter2@okta.example.com/api"),
            "https://admin:[redacted]@okta.example.com/api"
        );
        assert_eq!(
            redact_url("https://app.example.com/cb#access_token=eyJ&token_type=Bearer"),
            "https://app.example.com/cb#access_token=[redacted]&token_type=Bearer"
        );
        assert_eq!(redact_url("/api/v1/users/00u1"), "/api/v1/users/00u1");
    }

    #[test]
    fn text_keeps_what_the_admin_needs() {
        let t = redact_text(
            r#"{"password": "hunter2", "name": "ok", "access_token":"eyJabc"} Authorization: SSWS 00abc"#,
        );
        assert!(
            !t.contains("hunter2") && !t.contains("eyJabc") && !t.contains("00abc"),
            "{t}"
        );
        assert!(t.contains("\"name\": \"ok\""), "{t}");

        // An Okta error: code, summary and causes are kept, word for word.
        let okta = r#"{"errorCode":"E0000001","errorSummary":"Api validation failed: password","errorLink":"E0000001","errorId":"oae1","errorCauses":[{"errorSummary":"password: Password requirements were not met. The token included in the request is invalid."}]}"#;
        assert_eq!(redact_text(okta), okta);
        // An AWS error and a SCIM error.
        let aws = "<ErrorResponse><Error><Type>Sender</Type><Code>InvalidClientTokenId</Code><Message>The security token included in the request is invalid.</Message></Error><RequestId>r-1</RequestId></ErrorResponse>";
        assert_eq!(redact_text(aws), aws);
        let scim = r#"{"schemas":["urn:ietf:params:scim:api:messages:2.0:Error"],"status":"409","scimType":"uniqueness","detail":"userName ada@example.com exists; id 2819c223"}"#;
        assert_eq!(redact_text(scim), scim);
        // Fields that merely mention a secret are not secrets.
        let user = r#"{"id":"00u1","status":"ACTIVE","passwordChanged":null,"profile":{"login":"ada@example.com","title":"Secretary"},"credentials":{"provider":{"type":"OKTA","name":"OKTA"}},"NextToken":"pg2","hasPassword":true}"#;
        assert_eq!(redact_text(user), user);
        // Paths and ids in a request line.
        assert_eq!(
            redact_text("POST /api/v1/users/00u1/lifecycle/deactivate"),
            "POST /api/v1/users/00u1/lifecycle/deactivate"
        );
        assert_eq!(
            redact_text(
                r#"WWW-Authenticate: Bearer realm="IdentityProvider", error="invalid_token""#
            ),
            r#"WWW-Authenticate: Bearer realm="IdentityProvider", error="invalid_token""#
        );
    }

    #[test]
    fn nested_and_structured_secrets_are_redacted_whole() {
        let t = redact_text(
            r#"{"profile":{"login":"a@b.co"},"credentials":{"password":{"value":"tlpWENT2m"},"recovery_question":{"question":"q"}}}"#,
        );
        assert_eq!(
            t,
            r#"{"profile":{"login":"a@b.co"},"credentials":{"password":[redacted],"recovery_question":{"question":"q"}}}"#
        );
        let t = redact_text(
            "<CreateAccessKeyResult><AccessKey><UserName>ada</UserName><AccessKeyId>AKIA1</AccessKeyId><SecretAccessKey>wJalrXUtnFEMI</SecretAccessKey></AccessKey></CreateAccessKeyResult>",
        );
        assert!(!t.contains("wJalrXUtnFEMI"), "{t}");
        assert!(t.contains("<UserName>ada</UserName>"), "{t}");
        let t = redact_text(
            "grant_type=client_credentials&client_assertion=eyJ.x.y&scope=okta.users.read",
        );
        assert_eq!(
            t,
            "grant_type=client_credentials&client_assertion=[redacted]&scope=okta.users.read"
        );
        let t = redact_text(
            "Authorization: AWS4-HMAC-SHA256 Credential=AKIAX/20240101/us-east-1/iam/aws4_request, SignedHeaders=host;x-amz-date, Signature=deadbeef",
        );
        assert_eq!(t, "Authorization: [redacted]");
        let t = redact_text(
            "Credential=AKIAX/20240101/us-east-1/iam/aws4_request, SignedHeaders=host, Signature=deadbeef",
        );
        assert_eq!(
            t,
            "Credential=[redacted]/20240101/us-east-1/iam/aws4_request, SignedHeaders=host, Signature=[redacted]"
        );
        // A cut-off body still loses the start of the secret.
        assert_eq!(
            redact_text(r#"{"client_secret":"abcdef"#),
            r#"{"client_secret":"[redacted]"#
        );
    }

    #[test]
    fn headers_by_name() {
        assert_eq!(
            redact_header("Authorization", "Bearer eyJhbGci"),
            "Bearer [redacted]"
        );
        assert_eq!(redact_header("X-Api-Key", "k-123"), "[redacted]");
        assert_eq!(redact_header("Cookie", "sid=abc; theme=dark"), "[redacted]");
        assert_eq!(redact_header("X-Amz-Security-Token", "FQo"), "[redacted]");
        assert_eq!(redact_header("X-Rate-Limit-Remaining", "5"), "5");
        assert_eq!(redact_header("Idempotency-Key", "op-1"), "op-1");
        assert!(!is_secret_header("password"), "prose, not a header");
    }

    /// A secret value: a marker that appears nowhere else in the templates, then the
    /// characters credentials are made of (base64, JWTs, API keys).
    fn secret() -> impl Strategy<Value = String> {
        "[A-Za-z0-9._~+/-]{6,40}".prop_map(|t| format!("Zq9{t}"))
    }

    fn param_name() -> impl Strategy<Value = &'static str> {
        prop::sample::select(vec![
            "token",
            "access_token",
            "refresh_token",
            "id_token",
            "client_secret",
            "password",
            "secret",
            "key",
            "api_key",
            "apiKey",
            "signature",
            "X-Amz-Signature",
            "X-Amz-Security-Token",
            "sig",
            "code",
            "client_assertion",
        ])
    }

    fn field_name() -> impl Strategy<Value = &'static str> {
        prop::sample::select(vec![
            "password",
            "client_secret",
            "secret",
            "token",
            "access_token",
            "refresh_token",
            "private_key",
            "client_assertion",
            "SecretAccessKey",
            "sessionToken",
            "apiToken",
        ])
    }

    fn header() -> impl Strategy<Value = (&'static str, &'static str)> {
        prop::sample::select(vec![
            ("Authorization", "Bearer "),
            ("Authorization", "SSWS "),
            ("Authorization", "Basic "),
            ("authorization", ""),
            ("Proxy-Authorization", "Basic "),
            ("Cookie", "sid="),
            ("X-Amz-Security-Token", ""),
            ("X-Api-Key", ""),
            ("X-Auth-Token", ""),
        ])
    }

    /// Text around the secret, from the characters of ordinary messages.
    fn prose() -> impl Strategy<Value = String> {
        "[a-z ,.:()0-9]{0,30}"
    }

    proptest! {
        #[test]
        fn a_secret_query_value_never_shows_and_the_rest_does(
            name in param_name(),
            value in secret(),
            other in "[a-z0-9]{1,12}",
            first in any::<bool>(),
        ) {
            let url = if first {
                format!("https://x.example.com/api/v1/users?{name}={value}&after={other}")
            } else {
                format!("/api/v1/users?after={other}&{name}={value}")
            };
            for shown in [redact_url(&url), redact_text(&url), redact_text(&format!("GET {url} failed"))] {
                prop_assert!(!shown.contains(&value), "{shown}");
                prop_assert!(shown.contains(&format!("after={other}")), "{shown}");
                prop_assert!(shown.contains("/api/v1/users?"), "{shown}");
            }
        }

        #[test]
        fn an_amz_credential_keeps_its_scope_only(key in "AKIA[A-Z0-9]{16}", encoded in any::<bool>()) {
            let sep = if encoded { "%2F" } else { "/" };
            let url = format!("/?X-Amz-Credential={key}{sep}20240101{sep}us-east-1{sep}iam{sep}aws4_request&Action=ListUsers");
            for shown in [redact_url(&url), redact_text(&url)] {
                prop_assert!(!shown.contains(&key), "{shown}");
                prop_assert!(shown.contains("us-east-1") && shown.contains("Action=ListUsers"), "{shown}");
            }
        }

        #[test]
        fn a_secret_header_value_never_shows(
            (name, prefix) in header(),
            value in secret(),
            before in prose(),
        ) {
            let line = format!("{before} {name}: {prefix}{value}");
            let shown = redact_text(&line);
            prop_assert!(!shown.contains(&value), "{shown}");
            prop_assert!(shown.contains(&format!("{name}:")), "{shown}");
            let header_value = format!("{prefix}{value}");
            let by_name = redact_header(name, &header_value);
            prop_assert!(!by_name.contains(&value), "{}", by_name);
        }

        #[test]
        fn a_secret_field_value_never_shows(
            name in field_name(),
            value in secret(),
            login in "[a-z]{1,8}@example\\.com",
            shape in 0..5u8,
        ) {
            let text = match shape {
                0 => format!(r#"{{"{name}": "{value}", "login": "{login}"}}"#),
                1 => format!(r#"{{"login":"{login}","{name}":"{value}"}}"#),
                2 => format!(r#"{{"login":"{login}","credentials":{{"{name}":{{"value":"{value}"}}}}}}"#),
                3 => format!("login={login}&{name}={value}"),
                _ => format!("<Login>{login}</Login><{name}>{value}</{name}>"),
            };
            let shown = redact_text(&text);
            prop_assert!(!shown.contains(&value), "{shown}");
            prop_assert!(shown.contains(&login), "{shown}");
        }

        #[test]
        fn redaction_never_panics_and_leaves_plain_text_alone(text in "\\PC{0,200}") {
            let shown = redact_text(&text);
            let _ = redact_url(&text);
            if !text.contains([':', '=', '<']) && !text.to_ascii_lowercase().contains("bearer")
                && !text.to_ascii_lowercase().contains("ssws") && !text.to_ascii_lowercase().contains("basic")
            {
                prop_assert_eq!(shown, text);
            }
        }
    }
}
