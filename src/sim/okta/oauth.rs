//! The OAuth 2.0 token endpoint (client credentials with private_key_jwt).

use super::*;

// ---------------------------------------------------------------------------------------
// OAuth 2.0 token endpoint (client credentials with private_key_jwt)
// ---------------------------------------------------------------------------------------

pub(super) fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response {
    json_response(
        status,
        json!({ "error": error, "error_description": description }),
    )
}

#[derive(serde::Deserialize)]
pub(super) struct AssertionClaims {
    pub(super) iss: Option<String>,
    pub(super) sub: Option<String>,
    pub(super) jti: Option<String>,
    pub(super) exp: Option<u64>,
    pub(super) iat: Option<u64>,
}

pub(super) async fn token(
    State(inner): State<Arc<Inner>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    inner.lock().token_requests += 1;
    let form: HashMap<String, String> = url::form_urlencoded::parse(&body).into_owned().collect();
    let field = |k: &str| form.get(k).map(String::as_str).unwrap_or("");
    if field("grant_type") != "client_credentials" {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "The authorization grant type is not supported by the authorization server. Configured grant types: [client_credentials].",
        );
    }
    if field("client_assertion_type") != "urn:ietf:params:oauth:client-assertion-type:jwt-bearer" {
        return oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "The client_assertion_type is missing or not supported; use urn:ietf:params:oauth:client-assertion-type:jwt-bearer.",
        );
    }
    let assertion = field("client_assertion");
    let claims: AssertionClaims = match jsonwebtoken::dangerous::insecure_decode_claims(assertion) {
        Ok(c) => c,
        Err(_) => {
            return oauth_error(
                StatusCode::UNAUTHORIZED,
                "invalid_client",
                "The client_assertion token is not a valid JWT.",
            );
        }
    };
    let client_id = claims.iss.clone().unwrap_or_default();
    if claims.sub.as_deref() != Some(client_id.as_str())
        || (!field("client_id").is_empty() && field("client_id") != client_id)
    {
        return oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "The client_assertion token's 'iss' and 'sub' claims must both be the client_id.",
        );
    }
    let (pem, allowed) = {
        let s = inner.lock();
        match s.clients.get(&client_id) {
            Some(c) => (c.public_key_pem.clone(), c.scopes.clone()),
            None => {
                return oauth_error(
                    StatusCode::UNAUTHORIZED,
                    "invalid_client",
                    "Invalid value for 'client_id' parameter.",
                );
            }
        }
    };
    let header = match jsonwebtoken::decode_header(assertion) {
        Ok(h) => h,
        Err(_) => {
            return oauth_error(
                StatusCode::UNAUTHORIZED,
                "invalid_client",
                "The client_assertion token is not a valid JWT.",
            );
        }
    };
    use jsonwebtoken::{Algorithm, DecodingKey, Validation};
    let key = match header.alg {
        Algorithm::RS256 | Algorithm::RS384 | Algorithm::RS512 => {
            DecodingKey::from_rsa_pem(pem.as_bytes())
        }
        Algorithm::ES256 | Algorithm::ES384 => DecodingKey::from_ec_pem(pem.as_bytes()),
        _ => {
            return oauth_error(
                StatusCode::UNAUTHORIZED,
                "invalid_client",
                "The client_assertion token's signing algorithm is not supported.",
            );
        }
    };
    let Ok(key) = key else {
        return oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "The client_assertion signature is invalid.",
        );
    };
    let base = base(&headers);
    let audience = [
        format!("{base}/oauth2/v1/token"),
        format!(
            "{}/oauth2/v1/token",
            base.replacen("http://", "https://", 1)
        ),
    ];
    let mut v = Validation::new(header.alg);
    v.leeway = 5;
    v.set_audience(&audience);
    v.set_required_spec_claims(&["exp", "aud", "iss", "sub"]);
    if let Err(e) = jsonwebtoken::decode::<serde_json::Value>(assertion, &key, &v) {
        use jsonwebtoken::errors::ErrorKind as K;
        let why = match e.kind() {
            K::ExpiredSignature => "The client_assertion token is expired.",
            K::InvalidAudience => {
                "The audience claim for client_assertion must be the endpoint invoked for the request."
            }
            K::InvalidSignature => "The client_assertion signature is invalid.",
            K::MissingRequiredClaim(_) => "The client_assertion token is missing a required claim.",
            _ => "The client_assertion token is invalid.",
        };
        return oauth_error(StatusCode::UNAUTHORIZED, "invalid_client", why);
    }
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    if let (Some(exp), iat) = (claims.exp, claims.iat.unwrap_or(now))
        && exp > iat.max(now) + 3600
    {
        return oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "The client_assertion token has an expiration too far into the future.",
        );
    }
    let Some(jti) = claims.jti.filter(|j| !j.is_empty()) else {
        return oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "The client_assertion token must have a 'jti' claim.",
        );
    };
    let requested: Vec<String> = field("scope")
        .split_whitespace()
        .map(str::to_string)
        .collect();
    if requested.is_empty() {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_scope",
            "The authorization server resource does not have any configured default scopes, 'scope' must be provided.",
        );
    }
    let denied: Vec<&String> = requested
        .iter()
        .filter(|r| !allowed.contains(r) || !ALL_SCOPES.contains(&r.as_str()))
        .collect();
    if !denied.is_empty() {
        let names: Vec<&str> = denied.iter().map(|s| s.as_str()).collect();
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_scope",
            &format!("The following scopes are not allowed: {}", names.join(", ")),
        );
    }
    let ttl = *inner.token_ttl.lock().unwrap_or_else(|p| p.into_inner());
    let access = random_alnum(48);
    {
        let mut s = inner.lock();
        if !s.used_jtis.insert(jti) {
            return oauth_error(
                StatusCode::UNAUTHORIZED,
                "invalid_client",
                "The client_assertion token has already been used.",
            );
        }
        s.access_tokens.insert(
            access.clone(),
            AccessToken {
                client_id,
                scopes: requested.clone(),
                expires: SystemTime::now() + ttl,
                revoked: false,
            },
        );
    }
    let mut r = json_response(
        StatusCode::OK,
        json!({
            "token_type": "Bearer",
            "expires_in": ttl.as_secs().max(1),
            "access_token": access,
            "scope": requested.join(" "),
        }),
    );
    r.headers_mut()
        .insert("cache-control", HeaderValue::from_static("no-store"));
    r.headers_mut()
        .insert("pragma", HeaderValue::from_static("no-cache"));
    r
}
