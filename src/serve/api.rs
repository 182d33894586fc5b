//! The synchronous API proxy (the seed's pattern 6) and a person's access:
//! - `POST /api/v1/sources/{source}/people?wait=SECS` (bearer: the source's `api_token`):
//!   one HR record in the source's format, mapped, validated, upserted, planned for that
//!   one person and queued, then waited on for up to `wait` seconds (default 10, at most
//!   300). 200 with each operation's outcome per system once all have settled
//!   (succeeded, failed, cancelled, or waiting for an approver or a date); 202 with the
//!   operation ids when the wait ran out; 409 when a guard held the change; 422 naming
//!   the field when mapping or validation failed; 401 without the token.
//! - `GET /api/v1/people/{id}/access` (bearer: any source's `api_token`): intended versus
//!   observed access per system, and the operations in flight.

use super::Shared;
use crate::model::OperationStatus;
use crate::sources::ingest::{self, Context, Intent, Refused};
use crate::store::Store;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The default and longest wait of the proxy.
pub const DEFAULT_WAIT_SECS: u64 = 10;
pub const MAX_WAIT_SECS: u64 = 300;

fn answer(status: StatusCode, body: Value) -> Response {
    (status, axum::Json(body)).into_response()
}

fn unauthorized(message: &str) -> Response {
    (
        StatusCode::UNAUTHORIZED,
        [(header::WWW_AUTHENTICATE, "Bearer")],
        axum::Json(json!({"error": "unauthorized", "message": message})),
    )
        .into_response()
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
        .map(str::trim)
}

#[derive(Debug, Deserialize)]
pub(super) struct WaitQuery {
    wait: Option<String>,
}

/// Whether an operation has settled (nothing more happens without a person or a date).
fn settled(s: OperationStatus) -> bool {
    matches!(
        s,
        OperationStatus::Succeeded
            | OperationStatus::Failed
            | OperationStatus::Cancelled
            | OperationStatus::PendingApproval
            | OperationStatus::Scheduled
            | OperationStatus::Blocked
    )
}

pub(super) async fn post_person(
    State(sh): State<Arc<Shared>>,
    Path(name): Path<String>,
    Query(q): Query<WaitQuery>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(source) = sh.sources.get(&name) else {
        return answer(
            StatusCode::NOT_FOUND,
            json!({"error": "unknown_source", "message": format!("no source {name:?} in sources.toml")}),
        );
    };
    let Some(token) = bearer(&headers) else {
        return unauthorized("send the source's api_token as Authorization: Bearer ...");
    };
    match sh.sources.token_ok(&name, token) {
        Ok(true) => {}
        Ok(false) => return unauthorized("the token is not this source's api_token"),
        Err(e) => {
            return answer(
                StatusCode::SERVICE_UNAVAILABLE,
                json!({"error": "secret_unavailable", "message": e}),
            );
        }
    }
    let wait = match q.wait.as_deref().map(str::parse::<u64>) {
        None => DEFAULT_WAIT_SECS,
        Some(Ok(w)) if w <= MAX_WAIT_SECS => w,
        _ => {
            return answer(
                StatusCode::BAD_REQUEST,
                json!({"error": "bad_wait", "field": "wait",
                       "message": format!("wait is whole seconds from 0 to {MAX_WAIT_SECS}")}),
            );
        }
    };
    let record: Value = match serde_json::from_slice(&body) {
        Ok(v @ Value::Object(_)) => v,
        Ok(_) => {
            return answer(
                StatusCode::UNPROCESSABLE_ENTITY,
                json!({"error": "invalid", "field": "-", "message": "the body is not a JSON object"}),
            );
        }
        Err(e) => {
            return answer(
                StatusCode::BAD_REQUEST,
                json!({"error": "bad_json", "message": format!("not JSON: {e}")}),
            );
        }
    };
    let started = Instant::now();
    let sh2 = sh.clone();
    let source_name = name.clone();
    let applied = tokio::task::spawn_blocking(move || {
        let sh = sh2;
        let source = sh.sources.get(&source_name).expect("checked above");
        let actor = format!("source:{source_name}");
        let mut store = sh.processor.store.lock().unwrap_or_else(|p| p.into_inner());
        let ctx = Context {
            catalog: &sh.engine.catalog,
            policies: &sh.processor.policies,
            guard: &sh.processor.guard,
            actor: &actor,
        };
        let today = chrono::Utc::now().date_naive();
        let p = ingest::to_person(source, &record, "body", Intent::Upsert, &store, today)?;
        let cause = format!("source:{source_name}:api");
        ingest::apply_person(&mut store, &ctx, &p, &cause, None)
    })
    .await;
    let _ = source;
    let applied = match applied {
        Ok(Ok(a)) => a,
        Ok(Err(r)) => {
            let status =
                StatusCode::from_u16(r.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            if let Refused::Failed(e) = &r {
                tracing::error!(source = %name, error = %e, "the API proxy failed");
            }
            return answer(status, r.to_json());
        }
        Err(e) => {
            return answer(
                StatusCode::INTERNAL_SERVER_ERROR,
                json!({"error": "failed", "message": e.to_string()}),
            );
        }
    };
    let deadline = started + Duration::from_secs(wait);
    loop {
        let sh2 = sh.clone();
        let ids = applied.ops.clone();
        let rows = tokio::task::spawn_blocking(move || {
            let store = sh2.store.lock().unwrap_or_else(|p| p.into_inner());
            ids.iter()
                .map(|id| store.op(*id))
                .collect::<crate::Result<Vec<_>>>()
        })
        .await;
        let rows: Vec<_> = match rows {
            Ok(Ok(r)) => r.into_iter().flatten().collect(),
            Ok(Err(e)) => {
                return answer(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    json!({"error": "failed", "message": e.to_string()}),
                );
            }
            Err(e) => {
                return answer(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    json!({"error": "failed", "message": e.to_string()}),
                );
            }
        };
        let all_settled = rows.iter().all(|o| settled(o.status));
        if all_settled || Instant::now() >= deadline {
            let mut systems: BTreeMap<String, Vec<Value>> = BTreeMap::new();
            for o in &rows {
                systems.entry(o.system.clone()).or_default().push(json!({
                    "operation": o.id,
                    "kind": o.kind.as_str(),
                    "entitlement": o.entitlement,
                    "status": o.status.as_str(),
                    "error": o.last_error_message,
                }));
            }
            let status = if all_settled {
                StatusCode::OK
            } else {
                StatusCode::ACCEPTED
            };
            return answer(
                status,
                json!({
                    "person": applied.person,
                    "change": applied.change.as_str(),
                    "settled": all_settled,
                    "operations": applied.ops,
                    "systems": systems,
                    "elapsed_ms": started.elapsed().as_millis() as u64,
                }),
            );
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

pub(super) async fn get_access(
    State(sh): State<Arc<Shared>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    match bearer(&headers) {
        Some(t) if sh.sources.any_token_ok(t) => {}
        _ => return unauthorized("send a source's api_token as Authorization: Bearer ..."),
    }
    let sh2 = sh.clone();
    let r = tokio::task::spawn_blocking(move || {
        let store = sh2.store.lock().unwrap_or_else(|p| p.into_inner());
        access_of(&store, &sh2.engine.catalog, &id)
    })
    .await;
    match r {
        Ok(Ok(Some(v))) => answer(StatusCode::OK, v),
        Ok(Ok(None)) => answer(
            StatusCode::NOT_FOUND,
            json!({"error": "unknown_person", "message": "no such person (HR id or e-mail)"}),
        ),
        Ok(Err(e)) => answer(
            StatusCode::INTERNAL_SERVER_ERROR,
            json!({"error": "failed", "message": e.to_string()}),
        ),
        Err(e) => answer(
            StatusCode::INTERNAL_SERVER_ERROR,
            json!({"error": "failed", "message": e.to_string()}),
        ),
    }
}

/// A person's intended and actual access per system. Actual access is what the last read
/// of the system saw (`observed`) plus what operations did since (`recorded`, marked so:
/// not yet confirmed by a read).
pub fn access_of(
    store: &Store,
    catalog: &crate::config::Catalog,
    key: &str,
) -> crate::Result<Option<Value>> {
    let Some(p) = store.find_person(key)? else {
        return Ok(None);
    };
    let id = &p.hris_id;
    let mut systems: BTreeMap<String, Value> = catalog
        .systems
        .keys()
        .map(|s| {
            (
                s.clone(),
                json!({"intended": [], "actual": [], "account": null, "in_flight": []}),
            )
        })
        .collect();
    let sys_of = |e: &str| e.split(':').next().unwrap_or("").to_string();
    for g in store.intended_for(id)? {
        let e = g.entitlement.to_string();
        if let Some(v) = systems.get_mut(&sys_of(&e))
            && let Some(a) = v["intended"].as_array_mut()
        {
            a.push(json!(e));
        }
    }
    for (e, source, at) in store.actual_for(id)? {
        if let Some(v) = systems.get_mut(&sys_of(&e))
            && let Some(a) = v["actual"].as_array_mut()
        {
            a.push(json!({"entitlement": e, "source": source, "at": at}));
        }
    }
    for s in catalog.systems.keys() {
        if let Some(a) = store.account_for(s, id)?
            && let Some(v) = systems.get_mut(s)
        {
            v["account"] = json!({"id": a.external_id, "login": a.login, "active": a.active});
        }
    }
    for o in store.ops_for_person(id, 200)? {
        if !settled(o.status)
            && let Some(v) = systems.get_mut(&o.system)
            && let Some(a) = v["in_flight"].as_array_mut()
        {
            a.push(json!({"operation": o.id, "kind": o.kind.as_str(),
                          "entitlement": o.entitlement, "status": o.status.as_str()}));
        }
    }
    Ok(Some(json!({
        "person": id,
        "name": format!("{} {}", p.given_name, p.family_name).trim(),
        "status": p.status.as_str(),
        "leaver": p.is_leaver(chrono::Utc::now()),
        "systems": systems,
    })))
}
