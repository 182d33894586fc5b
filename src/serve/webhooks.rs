//! `POST /webhooks/{source}`: a delivery is checked in this order, and the first failure
//! answers:
//! 1. the source exists in sources.toml and takes webhooks (else 404);
//! 2. the body is at most [`MAX_BODY`] (else 413);
//! 3. its signature verifies with the source's secret from the keychain, by the source's
//!    scheme, its timestamp within 5 minutes (else 401: `unsigned`, `malformed`,
//!    `bad_signature`, `stale`);
//! 4. the payload reads as the source's kind (else 400, naming where);
//! 5. it is stored in the inbox, durable (`synchronous = FULL`), under its delivery id;
//!    an id the source already delivered is a replay (401 `replayed`).
//!
//! Only then the sender gets 200. Refusals store nothing but a counter
//! (`source_stats`: `rejected:REASON`). Processing is asynchronous ([`super::inbox`]).
//!
//! Stores go through one writer thread that commits whatever deliveries are waiting in one
//! transaction (group commit), so each is durable before its answer and thousands a second
//! fit in few fsyncs.
//!
//! Handshakes: Slack's `url_verification` (signed) is answered with its challenge and not
//! stored; Okta's one-time `GET` with `X-Okta-Verification-Challenge` (carrying the hook's
//! secret) is answered `{"verification": ...}`.

use super::Shared;
use crate::secrets::Secret;
use crate::sources::config::{Source, SourceKind, SourcesConfig};
use crate::sources::events::{self, Event};
use crate::sources::signatures::{self, Rejection};
use crate::store::Store;
use crate::store::inbox::{NewDelivery, Stored};
use crate::{Error, Result};
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::Arc;
use tokio::sync::oneshot;

/// The largest body a webhook may have.
pub const MAX_BODY: usize = 1 << 20;

/// The configured sources with their secrets, resolved once at start.
pub struct SourceSet {
    pub config: SourcesConfig,
    /// Each pushing source's signing secret, or why it is unavailable.
    signing: HashMap<String, std::result::Result<Secret, String>>,
    /// Each source's API-proxy token, where it has one.
    tokens: HashMap<String, std::result::Result<Secret, String>>,
    /// Each polled source's API credential.
    api_keys: HashMap<String, std::result::Result<Secret, String>>,
}

impl SourceSet {
    /// Resolve every source's secrets with `resolve` (the keychain). A secret that cannot
    /// be read makes its source answer 503 with the reason; nothing else stops.
    pub fn new(
        config: SourcesConfig,
        resolve: &dyn Fn(&crate::config::systems::CredentialRef) -> Result<Secret>,
    ) -> SourceSet {
        let mut signing = HashMap::new();
        let mut tokens = HashMap::new();
        let mut api_keys = HashMap::new();
        for (name, s) in &config.sources {
            if s.kind.polled() {
                api_keys.insert(
                    name.clone(),
                    resolve(&s.credential).map_err(|e| e.to_string()),
                );
            }
            if s.kind.scheme().is_some()
                && let Some(c) = s.signing_secret()
            {
                signing.insert(name.clone(), resolve(c).map_err(|e| e.to_string()));
            }
            if let Some(c) = &s.api_token {
                tokens.insert(name.clone(), resolve(c).map_err(|e| e.to_string()));
            }
        }
        for (name, r) in signing.iter().chain(tokens.iter()).chain(api_keys.iter()) {
            if let Err(e) = r {
                tracing::error!(source = %name, error = %e, "a source's secret is unavailable; it answers 503");
            }
        }
        SourceSet {
            config,
            signing,
            tokens,
            api_keys,
        }
    }

    /// A source's webhook signing secret, or why it is unavailable.
    pub fn signing(&self, source: &str) -> std::result::Result<&Secret, String> {
        match self.signing.get(source) {
            Some(Ok(s)) => Ok(s),
            Some(Err(e)) => Err(e.clone()),
            None => Err(format!("source {source:?} has no signing secret")),
        }
    }

    /// A polled source's API credential, or why it is unavailable.
    pub fn api_key(&self, source: &str) -> std::result::Result<&Secret, String> {
        match self.api_keys.get(source) {
            Some(Ok(s)) => Ok(s),
            Some(Err(e)) => Err(e.clone()),
            None => Err(format!("source {source:?} is not polled")),
        }
    }

    pub fn get(&self, name: &str) -> Option<&Source> {
        self.config.sources.get(name)
    }

    /// Whether `token` is `source`'s API token (constant-time).
    pub fn token_ok(&self, source: &str, token: &str) -> std::result::Result<bool, String> {
        match self.tokens.get(source) {
            None => Ok(false),
            Some(Err(e)) => Err(e.clone()),
            Some(Ok(s)) => Ok(same(s.expose().as_bytes(), token.as_bytes())),
        }
    }

    /// Whether `token` is any source's API token (for reads not tied to one source).
    pub fn any_token_ok(&self, token: &str) -> bool {
        self.tokens
            .values()
            .filter_map(|r| r.as_ref().ok())
            .fold(false, |ok, s| {
                ok | same(s.expose().as_bytes(), token.as_bytes())
            })
    }
}

fn same(a: &[u8], b: &[u8]) -> bool {
    use subtle::ConstantTimeEq;
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

enum Cmd {
    Put(
        NewDelivery,
        oneshot::Sender<std::result::Result<Stored, String>>,
    ),
    Reject {
        source: String,
        reason: String,
    },
}

/// The inbox's one writer: a thread with its own connection (`synchronous = FULL`) that
/// commits every waiting delivery in one transaction.
#[derive(Clone)]
pub struct InboxWriter {
    tx: std::sync::mpsc::Sender<Cmd>,
    /// When a delivery last arrived (the processor gives way while they arrive).
    pub clock: Arc<IngestClock>,
}

/// When the last delivery arrived, in milliseconds since the Unix epoch.
#[derive(Debug, Default)]
pub struct IngestClock(std::sync::atomic::AtomicU64);

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

impl IngestClock {
    pub fn touch(&self) {
        self.0.store(now_ms(), std::sync::atomic::Ordering::Relaxed);
    }

    /// Whether a delivery arrived within the last `ms` milliseconds.
    pub fn busy_within(&self, ms: u64) -> bool {
        now_ms().saturating_sub(self.0.load(std::sync::atomic::Ordering::Relaxed)) < ms
    }
}

/// The most deliveries one transaction takes.
const GROUP: usize = 512;

impl InboxWriter {
    pub fn start(db: &std::path::Path) -> Result<InboxWriter> {
        let mut store = Store::open(db)?;
        store.conn().pragma_update(None, "synchronous", "FULL")?;
        let (tx, rx) = std::sync::mpsc::channel::<Cmd>();
        std::thread::Builder::new()
            .name("inbox-writer".into())
            .spawn(move || {
                while let Ok(first) = rx.recv() {
                    let mut batch = vec![first];
                    while batch.len() < GROUP {
                        match rx.try_recv() {
                            Ok(c) => batch.push(c),
                            Err(_) => break,
                        }
                    }
                    write_batch(&mut store, batch);
                }
            })
            .map_err(|e| Error::io("starting the inbox writer", e))?;
        Ok(InboxWriter {
            tx,
            clock: Arc::new(IngestClock::default()),
        })
    }

    /// Store a delivery; returns once it is committed.
    pub async fn put(&self, d: NewDelivery) -> std::result::Result<Stored, String> {
        self.clock.touch();
        let (tx, rx) = oneshot::channel();
        self.tx
            .send(Cmd::Put(d, tx))
            .map_err(|_| "the inbox writer has stopped".to_string())?;
        rx.await
            .map_err(|_| "the inbox writer has stopped".to_string())?
    }

    /// Count a refusal (not waited for).
    pub fn reject(&self, source: &str, reason: &str) {
        let _ = self.tx.send(Cmd::Reject {
            source: source.to_string(),
            reason: reason.to_string(),
        });
    }
}

fn write_batch(store: &mut Store, batch: Vec<Cmd>) {
    let mut puts = Vec::new();
    let mut replies = Vec::new();
    let mut rejects: HashMap<(String, String), i64> = HashMap::new();
    for c in batch {
        match c {
            Cmd::Put(d, reply) => {
                puts.push(d);
                replies.push(reply);
            }
            Cmd::Reject { source, reason } => *rejects.entry((source, reason)).or_default() += 1,
        }
    }
    let r = store.write(|tx| {
        for ((source, reason), n) in &rejects {
            tx.bump_source_stat(source, &format!("rejected:{reason}"), *n)?;
        }
        tx.inbox_put(&puts)
    });
    match r {
        Ok(stored) => {
            for (reply, s) in replies.into_iter().zip(stored) {
                let _ = reply.send(Ok(s));
            }
        }
        Err(e) => {
            tracing::error!(error = %e, deliveries = replies.len(), "storing webhook deliveries");
            for reply in replies {
                let _ = reply.send(Err(format!("the delivery could not be stored: {e}")));
            }
        }
    }
}

fn answer(status: StatusCode, body: serde_json::Value) -> Response {
    (status, axum::Json(body)).into_response()
}

/// The delivery id: the scheme's, else the body's, else a digest of the timestamp header
/// and the body (the same request sent again has the same id).
fn delivery_id(
    kind: SourceKind,
    verified: &signatures::Verified,
    headers: &HeaderMap,
    body: &[u8],
) -> String {
    if let Some(id) = &verified.delivery_id {
        return id.clone();
    }
    if let Some(id) = events::body_delivery_id(kind, body) {
        return id;
    }
    let ts = [
        "x-bamboohr-timestamp",
        "x-slack-request-timestamp",
        "webhook-timestamp",
    ]
    .iter()
    .find_map(|h| headers.get(*h).and_then(|v| v.to_str().ok()))
    .unwrap_or("");
    let mut h = Sha256::new();
    h.update(ts.as_bytes());
    h.update(b"\n");
    h.update(body);
    format!("sha256:{}", hex::encode(h.finalize()))
}

pub(super) async fn receive(
    State(sh): State<Arc<Shared>>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: std::result::Result<Bytes, BytesRejection>,
) -> Response {
    let Some(source) = sh.sources.get(&name) else {
        return answer(
            StatusCode::NOT_FOUND,
            json!({"error": "unknown_source", "message": format!("no source {name:?} in sources.toml")}),
        );
    };
    let Some(scheme) = source.kind.scheme() else {
        return answer(
            StatusCode::NOT_FOUND,
            json!({"error": "not_pushed", "message": format!("source {name:?} ({}) is polled; it takes no webhooks", source.kind.as_str())}),
        );
    };
    let body = match body {
        Ok(b) => b,
        Err(e) => {
            let status = e.status();
            if status == StatusCode::PAYLOAD_TOO_LARGE {
                sh.inbox.reject(&name, "too_large");
                return answer(
                    status,
                    json!({"error": "too_large", "message": format!("the body is over {MAX_BODY} bytes")}),
                );
            }
            return answer(
                status,
                json!({"error": "unreadable", "message": e.body_text()}),
            );
        }
    };
    let secret = match sh.sources.signing.get(&name) {
        Some(Ok(s)) => s,
        Some(Err(e)) => {
            return answer(
                StatusCode::SERVICE_UNAVAILABLE,
                json!({"error": "secret_unavailable", "message": e}),
            );
        }
        None => {
            return answer(
                StatusCode::SERVICE_UNAVAILABLE,
                json!({"error": "secret_unavailable",
                       "message": format!("source {name:?} has no webhook signing secret (webhook_secret in sources.toml)")}),
            );
        }
    };
    let now = chrono::Utc::now().timestamp();
    let verified = match signatures::verify(scheme, &headers, &body, secret.expose(), now) {
        Ok(v) => v,
        Err(r) => return refuse(&sh, &name, r.as_str()),
    };
    let event_type = headers
        .get("x-github-event")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let parsed = match events::parse(source.kind, &body, event_type.as_deref()) {
        Ok(p) => p,
        Err(e) => {
            sh.inbox.reject(&name, "bad_payload");
            return answer(
                StatusCode::BAD_REQUEST,
                json!({"error": "bad_payload", "at": e.at, "message": e.message}),
            );
        }
    };
    if let [Event::Challenge(c)] = parsed.as_slice() {
        return answer(StatusCode::OK, json!({"challenge": c}));
    }
    let id = delivery_id(source.kind, &verified, &headers, &body);
    let stored = sh
        .inbox
        .put(NewDelivery {
            source: name.clone(),
            delivery_id: id.clone(),
            event_type,
            body: body.to_vec(),
        })
        .await;
    match stored {
        Ok(Stored::New(row)) => {
            sh.inbox_ready.notify_one();
            answer(
                StatusCode::OK,
                json!({"accepted": true, "delivery": id, "inbox": row}),
            )
        }
        Ok(Stored::Replay) => answer(
            StatusCode::UNAUTHORIZED,
            json!({"error": "replayed", "message": format!("delivery {id:?} was already received")}),
        ),
        Err(e) => answer(
            StatusCode::SERVICE_UNAVAILABLE,
            json!({"error": "not_stored", "message": e}),
        ),
    }
}

fn refuse(sh: &Shared, source: &str, reason: &str) -> Response {
    sh.inbox.reject(source, reason);
    tracing::warn!(source, reason, "webhook delivery refused");
    answer(
        StatusCode::UNAUTHORIZED,
        json!({"error": reason, "message": "the delivery's signature did not verify"}),
    )
}

/// Okta's one-time verification: `GET` with `X-Okta-Verification-Challenge`, carrying the
/// hook's secret like every delivery.
pub(super) async fn verify_challenge(
    State(sh): State<Arc<Shared>>,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> Response {
    let Some(source) = sh.sources.get(&name) else {
        return answer(StatusCode::NOT_FOUND, json!({"error": "unknown_source"}));
    };
    let challenge = headers
        .get("x-okta-verification-challenge")
        .and_then(|v| v.to_str().ok());
    let (SourceKind::OktaEvents, Some(challenge)) = (source.kind, challenge) else {
        return answer(
            StatusCode::METHOD_NOT_ALLOWED,
            json!({"error": "post_only", "message": "deliveries are POSTed"}),
        );
    };
    let Some(Ok(secret)) = sh.sources.signing.get(&name) else {
        return answer(
            StatusCode::SERVICE_UNAVAILABLE,
            json!({"error": "secret_unavailable"}),
        );
    };
    let now = chrono::Utc::now().timestamp();
    if let Err(r) = signatures::verify(
        signatures::Scheme::OktaEventHook,
        &headers,
        b"",
        secret.expose(),
        now,
    ) {
        return refuse(&sh, &name, Rejection::as_str(r));
    }
    answer(StatusCode::OK, json!({"verification": challenge}))
}
