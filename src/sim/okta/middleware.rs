//! The simulator's middleware: authentication, scopes, rate-limit buckets, concurrency, faults.

use super::*;

// ---------------------------------------------------------------------------------------
// Middleware
// ---------------------------------------------------------------------------------------

pub fn bucket_for(method: &Method, path: &str) -> &'static str {
    let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
    match segs.as_slice() {
        ["oauth2", "v1", "token"] => buckets::TOKEN,
        ["api", "v1", "users"] => buckets::USERS,
        ["api", "v1", "users", _] if method == Method::GET => buckets::USER_GET,
        ["api", "v1", "users", _] => buckets::USER_WRITE,
        ["api", "v1", "groups"] => buckets::GROUPS,
        ["api", "v1", "groups", _, ..] => buckets::GROUP,
        _ => buckets::OTHER,
    }
}

/// Who is calling, put into request extensions by [`authenticate`].
#[derive(Debug, Clone)]
pub(super) enum Caller {
    /// An SSWS API token: the admin's full permissions.
    Admin,
    /// An OAuth access token with these scopes.
    Service { scopes: Vec<String> },
}

pub(super) fn scope_granted(granted: &[String], required: &str) -> bool {
    granted.iter().any(|g| {
        g == required
            || (required.ends_with(".read")
                && g.strip_suffix(".manage") == required.strip_suffix(".read"))
    })
}

pub(super) fn required_scope(method: &Method, path: &str) -> &'static str {
    let groups = path.starts_with("/api/v1/groups");
    match (groups, method == Method::GET) {
        (true, true) => "okta.groups.read",
        (true, false) => "okta.groups.manage",
        (false, true) => "okta.users.read",
        (false, false) => "okta.users.manage",
    }
}

pub(super) fn invalid_token(bearer: bool, description: &str, base: &str, path: &str) -> Response {
    let mut r = okta_error(
        StatusCode::UNAUTHORIZED,
        "E0000011",
        "Invalid token provided",
        &[],
    );
    if bearer {
        let v = format!(
            "Bearer authorization_uri=\"{base}/oauth2/v1/authorize\", realm=\"IdentityProvider\", scope=\"okta.users.read\", error=\"invalid_token\", error_description=\"{description}\", resource=\"{path}\""
        );
        if let Ok(v) = HeaderValue::from_str(&v) {
            r.headers_mut().insert("www-authenticate", v);
        }
    }
    r
}

pub(super) async fn authenticate(
    State(inner): State<Arc<Inner>>,
    mut req: Request,
    next: Next,
) -> Response {
    let path = req.uri().path().to_string();
    if !path.starts_with("/api/") {
        return next.run(req).await;
    }
    let base = base(req.headers());
    let header = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let caller = {
        let s = inner.lock();
        if let Some(tok) = header.strip_prefix("SSWS ") {
            match s.api_tokens.get(tok.trim()) {
                Some(true) => Ok(Caller::Admin),
                _ => Err(invalid_token(false, "", &base, &path)),
            }
        } else if let Some(tok) = header.strip_prefix("Bearer ") {
            match s.access_tokens.get(tok.trim()) {
                Some(t) if t.revoked => Err(invalid_token(
                    true,
                    "The token has been revoked.",
                    &base,
                    &path,
                )),
                Some(t) if t.expires <= SystemTime::now() => {
                    Err(invalid_token(true, "The token has expired.", &base, &path))
                }
                Some(t) if s.clients.contains_key(&t.client_id) => Ok(Caller::Service {
                    scopes: t.scopes.clone(),
                }),
                _ => Err(invalid_token(
                    true,
                    "The access token is invalid.",
                    &base,
                    &path,
                )),
            }
        } else {
            Err(invalid_token(false, "", &base, &path))
        }
    };
    let caller = match caller {
        Ok(c) => c,
        Err(r) => return r,
    };
    if let Caller::Service { scopes } = &caller {
        let need = required_scope(req.method(), &path);
        if !scope_granted(scopes, need) {
            let mut r = okta_error(
                StatusCode::FORBIDDEN,
                "E0000006",
                "You do not have permission to perform the requested action",
                &[],
            );
            let v = format!(
                "Bearer realm=\"IdentityProvider\", error=\"insufficient_scope\", error_description=\"The access token provided does not contain the required scopes.\", resource=\"{path}\", scope=\"{need}\""
            );
            if let Ok(v) = HeaderValue::from_str(&v) {
                r.headers_mut().insert("www-authenticate", v);
            }
            return r;
        }
    }
    req.extensions_mut().insert(caller);
    next.run(req).await
}

pub(super) async fn fallback(req: Request) -> Response {
    // Never 501: Prism answers a 501 from upstream with a mock.
    okta_error(
        StatusCode::NOT_FOUND,
        "E0000022",
        &format!(
            "The endpoint does not support the provided HTTP method: {} {}",
            req.method(),
            req.uri().path()
        ),
        &[],
    )
}
