//! Who is calling: personal access tokens (classic and fine-grained), GitHub App JWTs and
//! installation access tokens; what each route needs of them; the App's own routes.

use super::shapes::{self, DOCS, DOCS_APPS, error, json_response};
use super::{Inner, OrgRole};
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::Response;
use chrono::{DateTime, Utc};
use rand::Rng;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A personal access token as [`super::GitHubHandle::add_token`] registers it. Classic
/// tokens (any prefix but `github_pat_`) carry OAuth `scopes` (`admin:org`, `read:org`,
/// `write:org`); fine-grained ones (`github_pat_…`) carry permissions in `scopes` as
/// `members:read` or `members:write`.
#[derive(Debug, Clone, PartialEq)]
pub struct TokenInfo {
    pub scopes: Vec<String>,
    pub expires_at: Option<DateTime<Utc>>,
    /// The user the token acts as (a GitHub user of the simulator).
    pub login: String,
}

#[derive(Debug)]
pub(super) struct UserToken {
    pub info: TokenInfo,
    pub revoked: bool,
}

#[derive(Debug)]
pub(super) struct App {
    pub public_key_pem: String,
    pub client_id: String,
    pub slug: String,
}

#[derive(Debug)]
pub(super) struct Installation {
    pub app_id: u64,
    pub permissions: BTreeMap<String, String>,
}

#[derive(Debug)]
pub(super) struct InstallationToken {
    pub installation_id: u64,
    pub permissions: BTreeMap<String, String>,
    pub expires: SystemTime,
    pub revoked: bool,
}

/// The caller, put into the request's extensions by the envelope.
#[derive(Debug, Clone)]
pub(super) enum Caller {
    User {
        login: String,
        id: u64,
        fine_grained: bool,
        scopes: Vec<String>,
        expires_at: Option<DateTime<Utc>>,
    },
    Installation {
        id: u64,
        permissions: BTreeMap<String, String>,
    },
    App {
        id: u64,
    },
}

impl Caller {
    /// The primary rate limit's key: the user (all their tokens) or the installation.
    pub(super) fn rate_key(&self) -> String {
        match self {
            Caller::User { id, .. } => format!("user:{id}"),
            Caller::Installation { id, .. } => format!("installation:{id}"),
            Caller::App { id } => format!("app:{id}"),
        }
    }

    /// "user ID 1234" / "installation ID 42", as GitHub's limit message names the caller.
    pub(super) fn rate_subject(&self) -> String {
        match self {
            Caller::User { id, .. } => format!("user ID {id}"),
            Caller::Installation { id, .. } => format!("installation ID {id}"),
            Caller::App { id } => format!("integration ID {id}"),
        }
    }
}

/// What a route asks of its caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Need {
    /// Any authenticated caller.
    Anyone,
    /// The `members` permission (read for GET, write otherwise); for user tokens also an
    /// owner's role to write.
    Members { write: bool, team: bool },
    /// A GitHub App JWT.
    AppJwt,
    /// A user token (`GET /user`).
    User,
}

pub(super) fn need(method: &Method, path: &str) -> Need {
    let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
    let write = method != Method::GET && method != Method::HEAD;
    match segs.as_slice() {
        ["app"] | ["app", "installations", _, "access_tokens"] => Need::AppJwt,
        ["user"] => Need::User,
        ["orgs", _, "teams", ..] => Need::Members { write, team: true },
        ["orgs", _, ..] => Need::Members { write, team: false },
        _ => Need::Anyone,
    }
}

/// Classic scopes a route accepts (`X-Accepted-OAuth-Scopes`).
pub(super) fn accepted_scopes(need: Need) -> &'static str {
    match need {
        Need::Members { write: false, .. } => "admin:org, read:org, repo, user, write:org",
        Need::Members {
            write: true,
            team: true,
        } => "admin:org, write:org",
        Need::Members {
            write: true,
            team: false,
        } => "admin:org",
        _ => "",
    }
}

fn bad_credentials() -> Response {
    error(StatusCode::UNAUTHORIZED, "Bad credentials", DOCS)
}

fn jwt_error(message: &str) -> Response {
    error(StatusCode::UNAUTHORIZED, message, DOCS)
}

pub(super) const JWT_UNDECODABLE: &str = "A JSON web token could not be decoded";

fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs() as i64
}

/// The credential of `Authorization: Bearer …` or `token …`.
fn credential(headers: &HeaderMap) -> Option<&str> {
    let v = headers.get("authorization")?.to_str().ok()?.trim();
    let (scheme, rest) = v.split_once(' ')?;
    (scheme.eq_ignore_ascii_case("bearer") || scheme.eq_ignore_ascii_case("token"))
        .then(|| rest.trim())
        .filter(|t| !t.is_empty())
}

/// Who sent the request, or the 401 GitHub answers.
pub(super) fn authenticate(inner: &Inner, headers: &HeaderMap) -> Result<Caller, Response> {
    let Some(token) = credential(headers) else {
        return Err(error(
            StatusCode::UNAUTHORIZED,
            "Requires authentication",
            DOCS,
        ));
    };
    if token.matches('.').count() == 2 {
        return verify_app_jwt(inner, token).map(|id| Caller::App { id });
    }
    let s = inner.lock();
    if let Some(t) = s.tokens.get(token) {
        let expired = t.info.expires_at.is_some_and(|at| at <= Utc::now());
        let user = s.user(&t.info.login);
        return match user {
            Some(u) if !t.revoked && !expired => Ok(Caller::User {
                login: u.login.clone(),
                id: u.id,
                fine_grained: token.starts_with("github_pat_"),
                scopes: t.info.scopes.clone(),
                expires_at: t.info.expires_at,
            }),
            _ => Err(bad_credentials()),
        };
    }
    match s.installation_tokens.get(token) {
        Some(t) if !t.revoked && t.expires > SystemTime::now() => Ok(Caller::Installation {
            id: t.installation_id,
            permissions: t.permissions.clone(),
        }),
        _ => Err(bad_credentials()),
    }
}

#[derive(serde::Deserialize)]
struct AppClaims {
    iss: Option<Value>,
    iat: Option<Value>,
    exp: Option<Value>,
}

/// Check a GitHub App's JWT as GitHub does: RS256 by the app's registered key, `iss` the
/// app id (number or string) or client id, `iat` not in the future, `exp` in the future and
/// no more than 10 minutes away. The app's id, or the 401.
pub(super) fn verify_app_jwt(inner: &Inner, token: &str) -> Result<u64, Response> {
    use jsonwebtoken::{Algorithm, DecodingKey, Validation};
    let undecodable = || jwt_error(JWT_UNDECODABLE);
    let claims: AppClaims =
        jsonwebtoken::dangerous::insecure_decode_claims(token).map_err(|_| undecodable())?;
    let header = jsonwebtoken::decode_header(token).map_err(|_| undecodable())?;
    if header.alg != Algorithm::RS256 {
        return Err(undecodable());
    }
    let (app_id, pem) = {
        let s = inner.lock();
        let by_iss = |iss: &Value| {
            let id = match iss {
                Value::Number(n) => n.as_u64(),
                Value::String(s) => s.parse::<u64>().ok(),
                _ => None,
            };
            s.apps.iter().find(|(app_id, app)| {
                Some(**app_id) == id || iss.as_str() == Some(app.client_id.as_str())
            })
        };
        match claims.iss.as_ref().and_then(by_iss) {
            Some((id, app)) => (*id, app.public_key_pem.clone()),
            None => return Err(undecodable()),
        }
    };
    let key = DecodingKey::from_rsa_pem(pem.as_bytes()).map_err(|_| undecodable())?;
    let mut v = Validation::new(Algorithm::RS256);
    v.validate_exp = false;
    v.validate_aud = false;
    v.required_spec_claims.clear();
    jsonwebtoken::decode::<Value>(token, &key, &v).map_err(|_| undecodable())?;
    let now = now_secs();
    let iat = claims.iat.as_ref().and_then(Value::as_i64);
    if iat.is_none_or(|iat| iat > now) {
        return Err(jwt_error(
            "'Issued at' claim ('iat') must be an Integer representing the time that the assertion was issued",
        ));
    }
    match claims.exp.as_ref().and_then(Value::as_i64) {
        Some(exp) if exp > now + 600 => Err(jwt_error(
            "'Expiration time' claim ('exp') is too far in the future",
        )),
        Some(exp) if exp > now => Ok(app_id),
        _ => Err(jwt_error(
            "'Expiration time' claim ('exp') must be a numeric value representing the future time at which the assertion expires",
        )),
    }
}

fn has_permission(perms: &BTreeMap<String, String>, name: &str, write: bool) -> bool {
    match perms.get(name).map(String::as_str) {
        Some("write") | Some("admin") => true,
        Some("read") => !write,
        _ => false,
    }
}

/// Whether `caller` may do what `need` says; the 403 (or 401) GitHub answers otherwise.
pub(super) fn authorize(inner: &Inner, caller: &Caller, need: Need) -> Result<(), Response> {
    let forbidden = |m: &str| Err(error(StatusCode::FORBIDDEN, m, DOCS));
    let by_integration = "Resource not accessible by integration";
    match (need, caller) {
        (Need::Anyone, _) => Ok(()),
        (Need::AppJwt, Caller::App { .. }) => Ok(()),
        (Need::AppJwt, _) => Err(jwt_error(JWT_UNDECODABLE)),
        (Need::User, Caller::User { .. }) => Ok(()),
        (Need::User, _) => forbidden(by_integration),
        (Need::Members { .. }, Caller::App { .. }) => forbidden(by_integration),
        (Need::Members { write, .. }, Caller::Installation { permissions, .. }) => {
            if has_permission(permissions, "members", write) {
                Ok(())
            } else {
                forbidden(by_integration)
            }
        }
        (
            Need::Members { write, .. },
            Caller::User {
                login,
                fine_grained,
                scopes,
                ..
            },
        ) => {
            let granted = if *fine_grained {
                let perms: BTreeMap<String, String> = scopes
                    .iter()
                    .filter_map(|s| s.split_once(':'))
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect();
                if !has_permission(&perms, "members", write) {
                    return forbidden("Resource not accessible by personal access token");
                }
                true
            } else {
                let accepted = accepted_scopes(need);
                scopes.iter().any(|s| accepted.split(", ").any(|a| a == s))
            };
            let owner = inner
                .lock()
                .members
                .get(&login.to_lowercase())
                .is_some_and(|m| m.role == OrgRole::Admin);
            if granted && (!write || owner) {
                Ok(())
            } else {
                forbidden("Must have admin rights to Organization.")
            }
        }
    }
}

fn random_token(prefix: &str) -> String {
    const CHARS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rng();
    let body: String = (0..36)
        .map(|_| CHARS[rng.random_range(0..CHARS.len())] as char)
        .collect();
    format!("{prefix}{body}")
}

fn app_id_of(caller: Option<axum::Extension<Caller>>) -> Option<u64> {
    match caller.map(|c| c.0) {
        Some(Caller::App { id }) => Some(id),
        _ => None,
    }
}

/// `GET /app`: the authenticated app.
pub(super) async fn get_app(
    State(inner): State<Arc<Inner>>,
    headers: HeaderMap,
    caller: Option<axum::Extension<Caller>>,
) -> Response {
    let Some(id) = app_id_of(caller) else {
        return jwt_error(JWT_UNDECODABLE);
    };
    let base = shapes::base(&headers);
    let s = inner.lock();
    let Some(app) = s.apps.get(&id) else {
        return jwt_error(JWT_UNDECODABLE);
    };
    let permissions: BTreeMap<String, String> = s
        .installations
        .values()
        .filter(|i| i.app_id == id)
        .flat_map(|i| i.permissions.clone())
        .collect();
    let installations = s.installations.values().filter(|i| i.app_id == id).count();
    json_response(
        StatusCode::OK,
        json!({
            "id": id,
            "slug": app.slug,
            "node_id": format!("A_kwDO{id:08X}"),
            "client_id": app.client_id,
            "owner": shapes::org_as_owner(&inner, &base),
            "name": app.slug,
            "description": "accessdesk provisioning (simulated)",
            "external_url": "https://example.com/accessdesk",
            "html_url": format!("https://github.com/apps/{}", app.slug),
            "created_at": "2024-01-01T00:00:00Z",
            "updated_at": "2024-01-01T00:00:00Z",
            "permissions": permissions,
            "events": [],
            "installations_count": installations,
        }),
    )
}

/// `POST /app/installations/{installation_id}/access_tokens`: 201 with a `ghs_` token that
/// expires after the configured TTL, carrying the installation's permissions (or the
/// subset the body asks for; more than granted is 422).
pub(super) async fn create_installation_token(
    State(inner): State<Arc<Inner>>,
    Path(installation): Path<String>,
    caller: Option<axum::Extension<Caller>>,
    body: Bytes,
) -> Response {
    inner.lock().token_requests += 1;
    let Some(app_id) = app_id_of(caller) else {
        return jwt_error(JWT_UNDECODABLE);
    };
    let docs =
        "https://docs.github.com/rest/apps/apps#create-an-installation-access-token-for-an-app";
    let body = match shapes::parse_body(&body, docs) {
        Ok(b) => b,
        Err(r) => return r,
    };
    let ttl: Duration = inner.settings().installation_token_ttl;
    let mut s = inner.lock();
    let found = installation
        .parse::<u64>()
        .ok()
        .and_then(|id| s.installations.get(&id).map(|i| (id, i)))
        .filter(|(_, i)| i.app_id == app_id);
    let Some((installation_id, inst)) = found else {
        return shapes::not_found(DOCS_APPS);
    };
    let mut permissions = inst.permissions.clone();
    match body.get("permissions") {
        None | Some(Value::Null) => {}
        Some(Value::Object(asked)) => {
            let mut narrowed = BTreeMap::new();
            for (name, level) in asked {
                let level = level.as_str().unwrap_or("");
                if !has_permission(&permissions, name, level == "write") {
                    return error(
                        StatusCode::UNPROCESSABLE_ENTITY,
                        "The permissions requested are not granted to this installation.",
                        docs,
                    );
                }
                narrowed.insert(name.clone(), level.to_string());
            }
            permissions = narrowed;
        }
        Some(_) => {
            return shapes::invalid_request(
                "For 'properties/permissions', it is not an object.",
                docs,
            );
        }
    }
    let token = random_token("ghs_");
    let expires = SystemTime::now() + ttl;
    s.installation_tokens.insert(
        token.clone(),
        InstallationToken {
            installation_id,
            permissions: permissions.clone(),
            expires,
            revoked: false,
        },
    );
    let expires_at: DateTime<Utc> = expires.into();
    json_response(
        StatusCode::CREATED,
        json!({
            "token": token,
            "expires_at": shapes::ts(expires_at),
            "permissions": permissions,
            "repository_selection": "all",
        }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_need_what_github_asks() {
        assert_eq!(need(&Method::GET, "/app"), Need::AppJwt);
        assert_eq!(
            need(&Method::POST, "/app/installations/7/access_tokens"),
            Need::AppJwt
        );
        assert_eq!(need(&Method::GET, "/rate_limit"), Need::Anyone);
        assert_eq!(need(&Method::GET, "/users/octocat"), Need::Anyone);
        assert_eq!(
            need(&Method::GET, "/orgs/acme/members"),
            Need::Members {
                write: false,
                team: false
            }
        );
        assert_eq!(
            need(&Method::PUT, "/orgs/acme/teams/a/memberships/b"),
            Need::Members {
                write: true,
                team: true
            }
        );
        assert_eq!(
            accepted_scopes(need(&Method::DELETE, "/orgs/acme/members/b")),
            "admin:org"
        );
    }

    #[test]
    fn the_credential_comes_from_bearer_or_token() {
        let mut h = HeaderMap::new();
        assert_eq!(credential(&h), None);
        h.insert("authorization", "Bearer ghp_abc".parse().unwrap());
        assert_eq!(credential(&h), Some("ghp_abc"));
        h.insert("authorization", "token  ghp_abc ".parse().unwrap());
        assert_eq!(credential(&h), Some("ghp_abc"));
        h.insert("authorization", "Basic dXNlcjpwdw==".parse().unwrap());
        assert_eq!(credential(&h), None);
        h.insert("authorization", "Bearer ".parse().unwrap());
        assert_eq!(credential(&h), None);
    }
}
