//! `accessdesk serve`: the headless daemon. It runs the same engine as the console on the
//! same home, and an HTTP listener:
//! - `GET /healthz`: 200 `ok` when the store takes a write lock and the workers run; 503
//!   with the reason otherwise;
//! - `GET /metrics`: Prometheus text ([`metrics`]);
//!
//! and reconciles each system with `reconcile_every` on that schedule ([`schedule`]).
//!
//! The console and the CLI may use the same home meanwhile (SQLite in WAL mode with busy
//! timeouts): what they put on the queue (an applied plan, an approval, a retry) is picked
//! up by serve's workers, and claims are exclusive, so no operation runs twice.
//!
//! Shutdown (SIGTERM or ctrl-c): the listener stops taking requests, the workers stop
//! claiming, in-flight operations get until the grace period to finish; any still running
//! then are left `running` in the store, where the next start's crash recovery takes them
//! up (verified against the target before anything is sent again). Exit 0.

pub mod api;
pub mod inbox;
pub mod metrics;
pub mod pollers;
pub mod schedule;
pub mod webhooks;

use crate::engine::workers::Engine;
use crate::store::Store;
use crate::{Error, Result};
use axum::extract::DefaultBodyLimit;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;

/// How serve runs.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    pub listen: SocketAddr,
    /// How long in-flight operations may take to finish after a stop is asked for.
    pub grace: Duration,
    /// Run the engine's workers (false: something else runs them on the same engine, as
    /// the demo does; serve then runs its listener, sources and schedule only).
    pub run_workers: bool,
}

impl Default for ServeOptions {
    fn default() -> Self {
        ServeOptions {
            listen: SocketAddr::from(([127, 0, 0, 1], 8480)),
            grace: Duration::from_secs(8),
            run_workers: true,
        }
    }
}

/// What serve runs besides the engine: the HR sources and what processing their records
/// needs.
pub struct Inputs {
    pub sources: webhooks::SourceSet,
    pub policies: Arc<crate::policy::PolicySet>,
    pub guard: crate::config::systems::GuardThresholds,
}

/// What the handlers share.
struct Shared {
    /// A connection of serve's own for health checks and metrics (not the engine's).
    store: Mutex<Store>,
    engine: Arc<Engine>,
    workers_alive: AtomicBool,
    stopping: AtomicBool,
    sources: Arc<webhooks::SourceSet>,
    inbox: webhooks::InboxWriter,
    inbox_ready: Arc<tokio::sync::Notify>,
    processor: Arc<inbox::Processor>,
}

/// The HTTP routes (the listener's; tests drive them in-process too).
fn router(shared: Arc<Shared>) -> axum::Router {
    axum::Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics_page))
        .route(
            "/webhooks/{source}",
            post(webhooks::receive)
                .get(webhooks::verify_challenge)
                .layer(DefaultBodyLimit::max(webhooks::MAX_BODY)),
        )
        .route(
            "/api/v1/sources/{source}/people",
            post(api::post_person).layer(DefaultBodyLimit::max(webhooks::MAX_BODY)),
        )
        .route("/api/v1/people/{id}/access", get(api::get_access))
        .fallback(|| async { (StatusCode::NOT_FOUND, "no such endpoint\n") })
        .with_state(shared)
}

/// Whether the store takes a write lock now (BEGIN IMMEDIATE, then roll back).
fn store_writable(store: &Store) -> std::result::Result<(), String> {
    let c = store.conn();
    c.execute_batch("BEGIN IMMEDIATE; ROLLBACK;")
        .map_err(|e| format!("the store cannot be written: {e}"))
}

async fn healthz(State(sh): State<Arc<Shared>>) -> Response {
    let mut problems = Vec::new();
    if sh.stopping.load(Ordering::SeqCst) {
        problems.push("shutting down".to_string());
    }
    if !sh.workers_alive.load(Ordering::SeqCst) {
        problems.push("the workers are not running".to_string());
    }
    let sh2 = sh.clone();
    let writable = tokio::task::spawn_blocking(move || {
        let store = sh2.store.lock().unwrap_or_else(|p| p.into_inner());
        store_writable(&store)
    })
    .await
    .unwrap_or_else(|e| Err(format!("the health check failed: {e}")));
    if let Err(e) = writable {
        problems.push(e);
    }
    if problems.is_empty() {
        (StatusCode::OK, "ok\n").into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("unhealthy: {}\n", problems.join("; ")),
        )
            .into_response()
    }
}

async fn metrics_page(State(sh): State<Arc<Shared>>) -> Response {
    let sh2 = sh.clone();
    let text = tokio::task::spawn_blocking(move || {
        let store = sh2.store.lock().unwrap_or_else(|p| p.into_inner());
        metrics::render(
            &store,
            Some(&sh2.engine),
            sh2.workers_alive.load(Ordering::SeqCst),
        )
    })
    .await;
    match text {
        Ok(Ok(t)) => (
            StatusCode::OK,
            [("content-type", "text/plain; version=0.0.4; charset=utf-8")],
            t,
        )
            .into_response(),
        Ok(Err(e)) => {
            tracing::error!(error = %e, "rendering /metrics");
            (StatusCode::INTERNAL_SERVER_ERROR, format!("metrics: {e}\n")).into_response()
        }
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, format!("metrics: {e}\n")).into_response(),
    }
}

/// A running serve: where it listens, and how to stop it.
pub struct Running {
    pub addr: SocketAddr,
    stop: watch::Sender<bool>,
    done: tokio::task::JoinHandle<Result<Stopped>>,
}

/// How a serve ended.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stopped {
    /// Operations still running when the grace period ran out, left for recovery.
    pub parked: usize,
}

impl Running {
    /// Ask serve to stop, and wait until it has.
    pub async fn stop(self) -> Result<Stopped> {
        let _ = self.stop.send(true);
        self.done
            .await
            .map_err(|e| Error::Failed(format!("serve's task failed: {e}")))?
    }
}

/// Start serve: bind the listener, start the workers. `db` is the home's database, opened
/// again for serve's own health and metrics connection.
pub async fn start(
    engine: Arc<Engine>,
    db: PathBuf,
    opts: ServeOptions,
    inputs: Inputs,
) -> Result<Running> {
    let store = Store::open(&db)?;
    let inbox = webhooks::InboxWriter::start(&db)?;
    let sources = Arc::new(inputs.sources);
    let (nudge, nudges) = tokio::sync::mpsc::unbounded_channel();
    let processor = Arc::new(inbox::Processor {
        store: Mutex::new(Store::open(&db)?),
        sources: sources.clone(),
        catalog: engine.catalog.clone(),
        policies: inputs.policies,
        guard: inputs.guard,
        nudge,
        ingest: inbox.clock.clone(),
    });
    let inbox_ready = Arc::new(tokio::sync::Notify::new());
    let listener = tokio::net::TcpListener::bind(opts.listen)
        .await
        .map_err(|e| Error::io(format!("listening on {}", opts.listen), e))?;
    let addr = listener
        .local_addr()
        .map_err(|e| Error::io("reading the listener's address", e))?;
    let shared = Arc::new(Shared {
        store: Mutex::new(store),
        engine: engine.clone(),
        workers_alive: AtomicBool::new(true),
        stopping: AtomicBool::new(false),
        sources,
        inbox,
        inbox_ready,
        processor: processor.clone(),
    });
    let (stop_tx, stop_rx) = watch::channel(false);
    let done = tokio::spawn(run(
        engine, shared, listener, stop_rx, opts, db, processor, nudges,
    ));
    Ok(Running {
        addr,
        stop: stop_tx,
        done,
    })
}

#[allow(clippy::too_many_arguments)]
async fn run(
    engine: Arc<Engine>,
    shared: Arc<Shared>,
    listener: tokio::net::TcpListener,
    mut stop: watch::Receiver<bool>,
    opts: ServeOptions,
    db: PathBuf,
    processor: Arc<inbox::Processor>,
    nudges: tokio::sync::mpsc::UnboundedReceiver<schedule::Nudge>,
) -> Result<Stopped> {
    let (grace, opts_run_workers) = (opts.grace, opts.run_workers);
    let (engine_stop_tx, engine_stop_rx) = watch::channel(false);
    let scheduled = tokio::spawn(schedule::run(
        engine.clone(),
        db,
        engine.catalog.clone(),
        schedule::schedule_of(&engine.catalog),
        engine.cfg.actor.clone(),
        nudges,
        engine_stop_rx.clone(),
    ));
    let polled: Vec<String> = processor
        .sources
        .config
        .sources
        .values()
        .filter(|s| s.kind.polled())
        .map(|s| s.name.clone())
        .collect();
    let pollers: Vec<_> = polled
        .into_iter()
        .map(|name| {
            tokio::spawn(pollers::run(
                processor.clone(),
                name,
                engine_stop_rx.clone(),
            ))
        })
        .collect();
    let processing = tokio::spawn(inbox::run(
        processor,
        shared.inbox_ready.clone(),
        engine_stop_rx.clone(),
    ));
    let sh = shared.clone();
    let run_workers = opts_run_workers;
    let mut workers = tokio::spawn(async move {
        if !run_workers {
            let mut stop = engine_stop_rx.clone();
            let _ = stop.wait_for(|s| *s).await;
            return Ok(Default::default());
        }
        // A failure of the store (a lock held past the busy timeout, a full disk) stops
        // the workers; they start again after a pause (their start recovers operations
        // left running), and /healthz says 503 meanwhile.
        let mut pause = Duration::from_secs(1);
        loop {
            sh.workers_alive.store(true, Ordering::SeqCst);
            let r = engine.run_until_stopped(engine_stop_rx.clone()).await;
            sh.workers_alive.store(false, Ordering::SeqCst);
            match r {
                Ok(summary) => return Ok(summary),
                Err(e) if *engine_stop_rx.borrow() => return Err(e),
                Err(e) => {
                    tracing::error!(error = %e, retry_in_secs = pause.as_secs(), "the workers stopped; starting them again");
                }
            }
            let mut stop = engine_stop_rx.clone();
            tokio::select! {
                _ = stop.wait_for(|s| *s) => return Ok(Default::default()),
                _ = tokio::time::sleep(pause) => {}
            }
            pause = (pause * 2).min(Duration::from_secs(30));
        }
    });
    let mut http_stop = stop.clone();
    let app = router(shared.clone());
    let http = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = http_stop.wait_for(|s| *s).await;
            })
            .await
    });
    let died = tokio::select! {
        _ = stop.wait_for(|s| *s) => false,
        _ = &mut workers => true,
    };
    if died {
        // The workers ended on their own: keep answering (healthz says 503) until asked
        // to stop.
        let _ = stop.wait_for(|s| *s).await;
    }
    shared.stopping.store(true, Ordering::SeqCst);
    tracing::info!("stopping: no new requests or claims; in-flight operations may finish");
    let _ = engine_stop_tx.send(true);
    let mut parked = 0;
    if !workers.is_finished() {
        match tokio::time::timeout(grace, &mut workers).await {
            Ok(_) => {}
            Err(_) => {
                workers.abort();
                parked = shared
                    .store
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .queue_counts()?
                    .iter()
                    .filter(|(_, status, _)| status == "running")
                    .map(|(_, _, n)| *n as usize)
                    .sum();
                tracing::warn!(
                    parked,
                    "operations still running after the grace period are left for recovery at the next start"
                );
            }
        }
    }
    // A scheduled observation in progress is cut short: its run stays incomplete, and
    // the next one starts afresh.
    scheduled.abort();
    for p in pollers {
        p.abort();
    }
    // Deliveries not processed yet stay pending in the inbox for the next start.
    let _ = tokio::time::timeout(Duration::from_secs(1), processing).await;
    let _ = http.await;
    Ok(Stopped { parked })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_writable_store_is_healthy() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("a.db")).unwrap();
        assert_eq!(store_writable(&store), Ok(()));
        // Another connection holding the write lock: not writable now (busy).
        let other = rusqlite::Connection::open(dir.path().join("a.db")).unwrap();
        other.execute_batch("BEGIN IMMEDIATE;").unwrap();
        store
            .conn()
            .busy_timeout(Duration::from_millis(50))
            .unwrap();
        let e = store_writable(&store).unwrap_err();
        assert!(e.contains("cannot be written"), "{e}");
    }
}
