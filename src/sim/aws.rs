//! A stateful AWS account for the demo and the tests: IAM ([`super::aws_iam`]) and STS over
//! the query protocol, and the IAM Identity Center identity store
//! ([`super::aws_identitystore`]) over JSON 1.1, all on one endpoint as the AWS adapters
//! address it when `base_url` is set.
//!
//! Like AWS (and moto), a request is routed by the service its SigV4 credential scope
//! names: `iam` and `sts` take form-encoded `Action=...` POSTs and answer XML in their
//! namespaces; `identitystore` takes `X-Amz-Target: AWSIdentityStore.<Operation>` with an
//! `application/x-amz-json-1.1` body and answers JSON, errors as `__type`.
//!
//! Authentication: every request must carry a well-formed `Authorization: AWS4-HMAC-SHA256
//! Credential=KEY/DATE/REGION/SERVICE/aws4_request, SignedHeaders=..., Signature=...` and
//! `X-Amz-Date` within five minutes of now, naming an active access key of this account;
//! the signature is recomputed with the `aws-sigv4` crate and compared. Failures are the
//! vendor's: `MissingAuthenticationToken`, `IncompleteSignature`, `InvalidClientTokenId`,
//! `SignatureDoesNotMatch` (403, query) and their JSON 1.1 counterparts (400).
//!
//! Faults: the shared [`inject`] middleware and an optional fixed-window limit, both in
//! style [`ThrottleStyle::Aws`] (IAM and STS: 400 `Throttling` with no Retry-After, as
//! AWS documents; the identity store: 400 `ThrottlingException` with `RetryAfterSeconds`);
//! IAM and STS share one account-wide bucket, the identity store has its own.
//! [`FailRule`]s and lost responses ([`super::rules`]); [`AwsHandle::reject_user`] makes
//! both services refuse to create one user (400 `InvalidInput` / `ValidationException`);
//! eventual consistency: new users and memberships reach reads after
//! [`Faults::visibility_delay`], writes see the true state.

#![allow(clippy::result_large_err)]

use super::fault::{Faults, ThrottleStyle, inject};
use super::log::{LoggedRequest, RequestLog, record};
use super::ratelimit::{Enforcer, RateWindows, enforce};
use super::rules::{self, FailRule, Rules};
use super::{SimServer, WriteCounts};

mod account;
pub mod iam;
pub mod identitystore;
mod model;
mod sigv4;
mod wire;

pub use account::AwsSimOptions;
use account::{Caller, Inner};
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::from_fn_with_state;
use axum::response::Response;
pub use iam::{IamGroup, IamUser};
pub use identitystore::{StoreGroup, StoreUser};
use model::{AccessKey, Account};
use sigv4::*;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;
use wire::*;
pub use wire::{IAM_VERSION, IAM_XMLNS, STS_VERSION, STS_XMLNS};

/// Steers and inspects a running AWS simulator.
#[derive(Clone)]
pub struct AwsHandle {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for AwsHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AwsHandle")
    }
}

impl AwsHandle {
    /// What systems.toml's `base_url` names, for both AWS adapters.
    pub fn base_url(&self) -> String {
        self.inner.base_url.get().cloned().unwrap_or_default()
    }

    pub fn options(&self) -> &AwsSimOptions {
        &self.inner.opts
    }

    pub fn account_id(&self) -> &str {
        &self.inner.opts.account_id
    }

    pub fn identity_store_id(&self) -> &str {
        &self.inner.opts.identity_store_id
    }

    /// The admin's key pair as the keychain holds it: `ACCESS_KEY_ID:SECRET_ACCESS_KEY`.
    pub fn credential(&self) -> String {
        format!(
            "{}:{}",
            self.inner.opts.access_key_id, self.inner.opts.secret_access_key
        )
    }

    /// The admin's ARN (what `GetUser` and `GetCallerIdentity` name).
    pub fn admin_arn(&self) -> String {
        iam::user_arn(
            &self.inner.opts.account_id,
            "/",
            &self.inner.opts.admin_user,
        )
    }

    /// A new active access key for an existing IAM user: (id, secret).
    pub fn add_access_key(&self, user: &str) -> Option<(String, String)> {
        let mut a = self.inner.lock();
        iam::create_access_key(&mut a, user)
    }

    pub fn faults(&self) -> Arc<Faults> {
        self.inner.faults.clone()
    }

    /// The rate windows (buckets `iam` and `identitystore`).
    pub fn limits(&self) -> Arc<RateWindows> {
        self.inner.limits.clone()
    }

    pub fn fail(&self, rule: FailRule) {
        self.inner.rules.add(rule);
    }

    pub fn clear_rules(&self) {
        self.inner.rules.clear();
    }

    pub fn set_lost_response_rate(&self, rate: f64) {
        self.inner.rules.set_lost_response_rate(rate);
    }

    /// Refuse every creation of a user named `user_name` (case-insensitive) in IAM (400
    /// `InvalidInput`) and the identity store (400 `ValidationException`) with `message`:
    /// a failure no retry fixes, for an admin to triage.
    pub fn reject_user(&self, user_name: &str, message: &str) {
        self.inner
            .lock()
            .rejected
            .insert(user_name.to_lowercase(), message.to_string());
    }

    /// IAM users (the admin included), by name.
    pub fn iam_users(&self) -> Vec<iam::IamUser> {
        self.inner.lock().iam.users.values().cloned().collect()
    }

    pub fn iam_user(&self, name: &str) -> Option<iam::IamUser> {
        self.inner
            .lock()
            .iam
            .users
            .get(&name.to_lowercase())
            .cloned()
    }

    /// Create an IAM group directly (seeding without a request).
    pub fn seed_iam_group(&self, name: &str) {
        let account = self.inner.opts.account_id.clone();
        iam::new_group(&mut self.inner.lock(), &account, name, "/");
    }

    /// Put an IAM user in a group directly, as an admin in the AWS console would (no
    /// request, not counted). False when either does not exist.
    pub fn iam_add_to_group(&self, group: &str, user: &str) -> bool {
        let mut a = self.inner.lock();
        let Some(name) = a
            .iam
            .users
            .get(&user.to_lowercase())
            .map(|u| u.user_name.clone())
        else {
            return false;
        };
        match a.iam.groups.get_mut(&group.to_lowercase()) {
            Some(g) => {
                g.members.insert(name, Instant::now());
                true
            }
            None => false,
        }
    }

    /// The true (not eventually consistent) members of an IAM group, by user name.
    pub fn iam_group_members(&self, group: &str) -> Vec<String> {
        self.inner
            .lock()
            .iam
            .groups
            .get(&group.to_lowercase())
            .map(|g| g.members.keys().cloned().collect())
            .unwrap_or_default()
    }

    /// IAM user creations and group additions, for "nothing happened twice" checks.
    pub fn iam_counts(&self) -> WriteCounts {
        self.inner.lock().iam.counts.clone()
    }

    /// Identity store users, in creation order.
    pub fn store_users(&self) -> Vec<identitystore::StoreUser> {
        self.inner.lock().store.users_in_order()
    }

    /// Create an identity store group directly; returns its GroupId.
    pub fn seed_store_group(&self, display_name: &str) -> String {
        let store_id = self.inner.opts.identity_store_id.clone();
        identitystore::new_group(&mut self.inner.lock().store, &store_id, display_name)
    }

    /// The true member UserIds of an identity store group (by display name).
    pub fn store_group_members(&self, display_name: &str) -> Vec<String> {
        self.inner.lock().store.members_of_named(display_name)
    }

    /// Identity store user creations and membership creations.
    pub fn store_counts(&self) -> WriteCounts {
        self.inner.lock().store.counts.clone()
    }

    /// Every request seen so far.
    pub fn log(&self) -> Vec<LoggedRequest> {
        self.inner.log.entries()
    }

    pub fn count(&self, f: impl Fn(&LoggedRequest) -> bool) -> usize {
        self.inner.log.count(f)
    }

    pub fn clear_log(&self) {
        self.inner.log.clear();
    }
}

/// Start the simulator on 127.0.0.1 (ephemeral port).
pub async fn spawn(opts: AwsSimOptions) -> std::io::Result<(SimServer, AwsHandle)> {
    let faults = Faults::new(opts.faults.clone(), ThrottleStyle::Aws);
    let limits = Arc::new(RateWindows::new(
        opts.rate_limit.unwrap_or(u32::MAX),
        opts.rate_window,
    ));
    let mut account = Account::default();
    iam::new_user(
        &mut account,
        &opts.admin_user,
        "/",
        Vec::new(),
        Instant::now(),
        &opts,
    );
    account.keys.insert(
        opts.access_key_id.clone(),
        AccessKey {
            user: opts.admin_user.clone(),
            secret: opts.secret_access_key.clone(),
            active: true,
            created: chrono::Utc::now(),
        },
    );
    // The admin is not counted as a create: it was there before the test.
    account.iam.counts = WriteCounts::default();
    let inner = Arc::new(Inner {
        state: Mutex::new(account),
        rules: Rules::new(AwsBodies, opts.lost_response_rate, opts.seed ^ 0xa3a5),
        opts,
        faults: faults.clone(),
        limits,
        log: Arc::new(RequestLog::default()),
        base_url: OnceLock::new(),
    });
    let app = axum::Router::new()
        .route("/", axum::routing::any(dispatch))
        .fallback(not_found)
        .layer(from_fn_with_state(inner.clone(), authenticate))
        .layer(from_fn_with_state(
            Arc::new(Enforcer {
                windows: inner.limits.clone(),
                style: ThrottleStyle::Aws,
                bucket: |_, _, h| {
                    if is_json(h) { "identitystore" } else { "iam" }
                },
            }),
            enforce,
        ))
        .layer(from_fn_with_state(inner.rules.clone(), rules::apply))
        .layer(from_fn_with_state(faults, inject))
        .layer(from_fn_with_state(inner.log.clone(), record))
        .with_state(inner.clone());
    let server = SimServer::spawn(app).await?;
    let _ = inner.base_url.set(server.base_url());
    Ok((server, AwsHandle { inner }))
}

// ---------------------------------------------------------------------------------------
// Dispatch
// ---------------------------------------------------------------------------------------

async fn dispatch(
    State(inner): State<Arc<Inner>>,
    caller: Option<axum::Extension<Caller>>,
    req: Request,
) -> Response {
    let Some(axum::Extension(caller)) = caller else {
        return auth_error(
            false,
            AuthFailure::Missing,
            "Request is missing Authentication Token",
        );
    };
    let (parts, body) = req.into_parts();
    let Ok(body) = axum::body::to_bytes(body, 16 * 1024 * 1024).await else {
        return AwsError::bad("ValidationError", "The request body could not be read").query();
    };
    match caller.service.as_str() {
        "identitystore" => {
            let target = parts
                .headers
                .get("x-amz-target")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            match identitystore::handle(&inner, target, &body) {
                Ok(v) => json_ok(v),
                Err(e) => e.json(),
            }
        }
        service @ ("iam" | "sts") => {
            let mut params = Params::new();
            for (k, v) in url::form_urlencoded::parse(parts.uri.query().unwrap_or("").as_bytes())
                .chain(url::form_urlencoded::parse(&body))
            {
                params.insert(k.into_owned(), v.into_owned());
            }
            let Some(action) = params.get("Action").cloned() else {
                return AwsError::bad(
                    "MissingAction",
                    "The request must contain the parameter Action.",
                )
                .query();
            };
            let (version, ns) = if service == "iam" {
                (IAM_VERSION, IAM_XMLNS)
            } else {
                (STS_VERSION, STS_XMLNS)
            };
            if params.get("Version").map(String::as_str) != Some(version) {
                return AwsError::bad(
                    "InvalidAction",
                    format!(
                        "Could not find operation {action} for version {}",
                        params
                            .get("Version")
                            .map(String::as_str)
                            .unwrap_or("(none)")
                    ),
                )
                .query();
            }
            let result = if service == "iam" {
                iam::handle(&inner, &caller, &action, &params)
            } else {
                sts(&inner, &caller, &action)
            };
            match result {
                Ok(xml) => query_ok(&action, ns, xml),
                Err(e) => e.query(),
            }
        }
        other => AwsError::new(
            StatusCode::BAD_REQUEST,
            "InvalidAction",
            format!("This endpoint does not serve the service {other:?}"),
        )
        .query(),
    }
}

fn sts(inner: &Inner, caller: &Caller, action: &str) -> Result<Option<String>, AwsError> {
    match action {
        "GetCallerIdentity" => {
            let a = inner.lock();
            let user = a
                .iam
                .users
                .get(&caller.user.to_lowercase())
                .ok_or_else(|| {
                    AwsError::new(StatusCode::FORBIDDEN, "InvalidClientTokenId", BAD_TOKEN)
                })?;
            Ok(Some(format!(
                "{}{}{}",
                el("Arn", &user.arn),
                el("UserId", &user.user_id),
                el("Account", &inner.opts.account_id)
            )))
        }
        other => Err(AwsError::bad(
            "InvalidAction",
            format!("Could not find operation {other} for version {STS_VERSION}"),
        )),
    }
}

#[cfg(test)]
mod tests;
