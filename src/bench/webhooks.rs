//! `accessdesk bench webhooks` and `accessdesk bench leaver-e2e`: serve's HTTP listener,
//! in this process, on a home with five simulated systems (Okta simulators with their own
//! rate limits and 20-50 ms latency, as `bench wave`), and a Standard Webhooks source.
//!
//! - `webhooks`: signed `person.upserted` events (joiners) sent by concurrent clients on
//!   loopback as fast as serve answers; each answer is a 200 only once its event is
//!   committed to the inbox (`synchronous = FULL`). Reported: events per second, the
//!   time to 2xx at p50 and p99, and that every acknowledged event is in the inbox. The
//!   processor and the workers run meanwhile (the joiners are mapped, planned and
//!   queued, and provisioned at the simulators' rates), as they would in production.
//!   Signing happens before the clock starts (the senders' work, not serve's).
//! - `leaver-e2e`: while a 10,000-operation onboarding wave runs, one leaver at a time is
//!   sent as a signed `person.terminated` webhook; measured from the POST to every one
//!   of their five accounts deactivated at the simulators (operations succeeded).
//! - `proxy`: one joiner at a time through `POST /api/v1/sources/hr/people?wait=30`,
//!   measured from the request to its 200 (an account and a group in each of the five
//!   systems, every operation settled).

use super::leaver::{percentile_of, seed_leavers};
use super::wave::{RATES, World, engine, world};
use super::{BenchReport, median};
use crate::engine::apply::{apply_plan, make_plan};
use crate::engine::plan::Scope;
use crate::model::OperationStatus;
use crate::policy::PolicySet;
use crate::secrets::Secret;
use crate::serve::webhooks::SourceSet;
use crate::serve::{Inputs, Running, ServeOptions, start};
use crate::sources::config::SourcesConfig;
use crate::{Error, Result};
use base64::Engine as _;
use hmac::{Hmac, Mac};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// The bench source's signing secret (whsec_ + base64 of 32 bytes; bench-only).
const SECRET: &str = "whsec_YmVuY2gtb25seS1zaWduaW5nLXNlY3JldC0zMmJ5dGVzIQ==";

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| Error::io("runtime", e))
}

/// Serve on `w`'s home with one webhook source `hr` (default mapping) and a policy
/// granting every active person the `everyone` group in each system.
async fn serve_world(w: &World) -> Result<Running> {
    let sources = SourcesConfig::parse(
        Path::new("sources.toml"),
        "[sources.hr]\nkind = \"webhook\"\ncredential = \"env:BENCH_SECRET\"\napi_token = \"env:BENCH_SECRET\"\n",
    )?;
    let grants: Vec<String> = (0..RATES.len())
        .map(|s| format!("\"s{s}:group:everyone\""))
        .collect();
    let policies = PolicySet::parse(
        Path::new("policies.toml"),
        &format!(
            "[[rule]]\nname = \"everyone\"\nwhen = \"person.status == 'active'\"\ngrant = [{}]\n",
            grants.join(", ")
        ),
        &w.cfg.catalog,
    )?;
    let inputs = Inputs {
        sources: SourceSet::new(sources, &|_| Ok(Secret::new(SECRET))),
        policies: Arc::new(policies),
        guard: Default::default(),
    };
    let opts = ServeOptions {
        listen: std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
        grace: Duration::from_secs(2),
        run_workers: true,
    };
    start(engine(w)?, w.db(), opts, inputs).await
}

/// A signed Standard Webhooks delivery: (headers, body).
pub fn signed(id: &str, body: &[u8]) -> [(&'static str, String); 3] {
    let key = base64::engine::general_purpose::STANDARD
        .decode(SECRET.trim_start_matches("whsec_"))
        .unwrap_or_default();
    let ts = chrono::Utc::now().timestamp();
    let mut m = <Hmac<sha2::Sha256> as Mac>::new_from_slice(&key)
        .unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
    m.update(format!("{id}.{ts}.").as_bytes());
    m.update(body);
    let sig = base64::engine::general_purpose::STANDARD.encode(m.finalize().into_bytes());
    [
        ("webhook-id", id.to_string()),
        ("webhook-timestamp", ts.to_string()),
        ("webhook-signature", format!("v1,{sig}")),
    ]
}

fn client(conns: usize) -> Result<reqwest::Client> {
    crate::adapters::http::install_crypto_provider();
    reqwest::Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(conns)
        .build()
        .map_err(|e| Error::Failed(format!("an HTTP client: {e}")))
}

/// A delivery ready to send: its id, body and signed headers.
type Signed = (String, Vec<u8>, [(&'static str, String); 3]);

struct Ingest {
    per_sec: f64,
    p50_ms: f64,
    p99_ms: f64,
    acked: usize,
    stored: usize,
    processed: usize,
    /// Deliveries processed per second over the window after the last acknowledgement
    /// (the processor alone on the backlog, the workers running beside it).
    drain_per_sec: f64,
}

/// How long the processor is watched draining the backlog after the ingest.
const DRAIN_WINDOW: Duration = Duration::from_secs(10);

async fn ingest_once(events: usize, clients: usize) -> Result<Ingest> {
    let w = world(0).await?;
    let running = serve_world(&w).await?;
    let url = format!("http://{}/webhooks/hr", running.addr);
    let deliveries: Vec<Signed> = (0..events)
        .map(|i| {
            let id = format!("bench-{i}");
            let body = serde_json::json!({"type": "person.upserted", "data": {
                "employee_id": format!("W{i:06}"), "first_name": "Web",
                "last_name": format!("Hook{i}"), "email": format!("w{i}@example.com"),
                "status": "active"}})
            .to_string()
            .into_bytes();
            let h = signed(&id, &body);
            (id, body, h)
        })
        .collect();
    let deliveries = Arc::new(deliveries);
    let next = Arc::new(AtomicUsize::new(0));
    let http = client(clients)?;
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let (d, next, http, url) = (deliveries.clone(), next.clone(), http.clone(), url.clone());
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            let mut failed = 0usize;
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some((_, body, headers)) = d.get(i) else {
                    return (lat, failed);
                };
                let mut req = http.post(&url).body(body.clone());
                for (k, v) in headers {
                    req = req.header(*k, v);
                }
                let t = Instant::now();
                match req.send().await {
                    Ok(r) if r.status().as_u16() == 200 => {
                        let _ = r.bytes().await;
                        lat.push(t.elapsed().as_secs_f64() * 1000.0);
                    }
                    _ => failed += 1,
                }
            }
        }));
    }
    let mut lat = Vec::new();
    let mut failed = 0;
    for t in tasks {
        let (l, f) = t
            .await
            .map_err(|e| Error::Failed(format!("a bench client: {e}")))?;
        lat.extend(l);
        failed += f;
    }
    let elapsed = started.elapsed().as_secs_f64();
    if failed > 0 {
        return Err(Error::Failed(format!(
            "{failed} deliveries were not answered 200"
        )));
    }
    let counts = || -> Result<(usize, usize)> {
        let st = w.store.lock().unwrap_or_else(|e| e.into_inner());
        let stored: i64 = st
            .conn()
            .query_row("SELECT count(*) FROM inbox", [], |r| r.get(0))?;
        let processed: i64 = st.conn().query_row(
            "SELECT count(*) FROM inbox WHERE status != 'pending'",
            [],
            |r| r.get(0),
        )?;
        Ok((stored as usize, processed as usize))
    };
    let (stored, processed) = counts()?;
    let drain_started = Instant::now();
    tokio::time::sleep(DRAIN_WINDOW).await;
    let (_, drained) = counts()?;
    let drain_per_sec =
        drained.saturating_sub(processed) as f64 / drain_started.elapsed().as_secs_f64();
    let _ = running.stop().await;
    let mut sorted = lat.clone();
    sorted.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    Ok(Ingest {
        per_sec: lat.len() as f64 / elapsed,
        p50_ms: median(&mut lat),
        p99_ms: percentile_of(&sorted, 99.0),
        acked: sorted.len(),
        stored,
        processed,
        drain_per_sec,
    })
}

/// `bench webhooks`: `events` signed joiners from `clients` concurrent senders, `runs`
/// times; the median of the runs.
pub fn run_ingest(events: usize, clients: usize, runs: usize) -> Result<BenchReport> {
    let rt = runtime()?;
    let mut rates = Vec::new();
    let mut p50s = Vec::new();
    let mut p99s = Vec::new();
    let mut lost = 0usize;
    let mut processed = Vec::new();
    let mut drains = Vec::new();
    for _ in 0..runs.max(1) {
        let r = rt.block_on(ingest_once(events, clients))?;
        rates.push(r.per_sec);
        p50s.push(r.p50_ms);
        p99s.push(r.p99_ms);
        lost += r.acked.saturating_sub(r.stored);
        processed.push(r.processed as f64);
        drains.push(r.drain_per_sec);
    }
    let mut rep = BenchReport::new("webhooks");
    rep.push(
        &format!("signed events stored per second ({events} events, {clients} senders, median of {} runs)", runs.max(1)),
        median(&mut rates),
        "events/s",
        Some(3000.0),
        "higher",
    );
    rep.push("time to 2xx p50", median(&mut p50s), "ms", None, "lower");
    rep.push(
        "time to 2xx p99",
        median(&mut p99s),
        "ms",
        Some(20.0),
        "lower",
    );
    rep.push(
        "acknowledged events missing from the inbox (all runs)",
        lost as f64,
        "events",
        Some(0.0),
        "lower",
    );
    rep.push(
        "events already processed (mapped, planned, queued) when the last was acknowledged",
        median(&mut processed),
        "events",
        None,
        "higher",
    );
    rep.push(
        &format!(
            "backlog processed per second over the {} s after the ingest (mapped, planned, queued; the workers running)",
            DRAIN_WINDOW.as_secs()
        ),
        median(&mut drains),
        "events/s",
        None,
        "higher",
    );
    Ok(rep)
}

/// `bench leaver-e2e`: `leavers` signed terminations, one at a time, while a wave of
/// `joiners` people (x 5 systems x 2 operations) is provisioned.
pub fn run_leaver_e2e(joiners: usize, leavers: usize) -> Result<BenchReport> {
    let rt = runtime()?;
    rt.block_on(async {
        let w = world(joiners).await?;
        let leaving = seed_leavers(&w, leavers)?;
        let queued = {
            let mut st = w.store.lock().unwrap_or_else(|e| e.into_inner());
            let plan = make_plan(&mut st, &w.cfg.catalog, &Default::default(), &Scope::default(), "bench")?;
            apply_plan(&mut st, &w.cfg.catalog, &plan.id, "bench", None)?;
            plan.ops.len()
        };
        let running = serve_world(&w).await?;
        let url = format!("http://{}/webhooks/hr", running.addr);
        let http = client(4)?;
        let mut lat = Vec::new();
        for (i, p) in leaving.iter().enumerate() {
            tokio::time::sleep(Duration::from_millis(300)).await;
            let body = serde_json::json!({"type": "person.terminated",
                "data": {"employee_id": p.hris_id}})
            .to_string()
            .into_bytes();
            let mut req = http.post(&url).body(body.clone());
            for (k, v) in signed(&format!("leaver-{i}"), &body) {
                req = req.header(k, v);
            }
            let t0 = Instant::now();
            let r = req
                .send()
                .await
                .map_err(|e| Error::Failed(format!("posting a leaver: {e}")))?;
            if r.status().as_u16() != 200 {
                return Err(Error::Failed(format!("a leaver's delivery was answered {}", r.status())));
            }
            loop {
                let done: i64 = {
                    let st = w.store.lock().unwrap_or_else(|e| e.into_inner());
                    st.conn().query_row(
                        "SELECT count(*) FROM operations WHERE person_id = ?1 AND kind = 'deactivate' AND status = ?2",
                        rusqlite::params![p.hris_id, OperationStatus::Succeeded.as_str()],
                        |r| r.get(0),
                    )?
                };
                if done as usize == RATES.len() {
                    break;
                }
                if t0.elapsed() > Duration::from_secs(120) {
                    return Err(Error::Failed(format!("{} was not deactivated within 120 s", p.hris_id)));
                }
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            lat.push(t0.elapsed().as_secs_f64() * 1000.0);
        }
        let still: i64 = {
            let st = w.store.lock().unwrap_or_else(|e| e.into_inner());
            st.conn().query_row(
                "SELECT count(*) FROM operations WHERE status IN ('queued','retry_wait')",
                [],
                |r| r.get(0),
            )?
        };
        let _ = running.stop().await;
        let mut sorted = lat.clone();
        sorted.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
        let mut rep = BenchReport::new("leaver-e2e");
        rep.push(
            &format!("signed webhook to 5 accounts deactivated, p50 ({leavers} leavers, {queued} wave operations)"),
            median(&mut lat),
            "ms",
            Some(2000.0),
            "lower",
        );
        rep.push("signed webhook to 5 accounts deactivated, p99", percentile_of(&sorted, 99.0), "ms", Some(5000.0), "lower");
        rep.push("wave operations still queued after the last leaver", still as f64, "ops", None, "higher");
        Ok(rep)
    })
}

/// `bench proxy`: `n` joiners, one at a time, through the API proxy.
pub fn run_proxy(n: usize) -> Result<BenchReport> {
    let rt = runtime()?;
    rt.block_on(async {
        let w = world(0).await?;
        let running = serve_world(&w).await?;
        let url = format!("http://{}/api/v1/sources/hr/people?wait=30", running.addr);
        let http = client(2)?;
        let mut lat = Vec::new();
        let mut ops = 0usize;
        for i in 0..n {
            let body = serde_json::json!({"employee_id": format!("X{i:04}"), "first_name": "Proxy",
                "last_name": format!("Joiner{i}"), "email": format!("x{i}@example.com"), "status": "active"});
            let t0 = Instant::now();
            let r = http
                .post(&url)
                .bearer_auth(SECRET)
                .json(&body)
                .send()
                .await
                .map_err(|e| Error::Failed(format!("posting a joiner: {e}")))?;
            let status = r.status().as_u16();
            let v: serde_json::Value = r.json().await.unwrap_or_default();
            if status != 200 {
                return Err(Error::Failed(format!("a joiner was answered {status}: {v}")));
            }
            lat.push(t0.elapsed().as_secs_f64() * 1000.0);
            ops += v["operations"].as_array().map_or(0, Vec::len);
        }
        let _ = running.stop().await;
        let mut sorted = lat.clone();
        sorted.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
        let mut rep = BenchReport::new("proxy");
        rep.push(
            &format!("one joiner through the API proxy to 200, p50 ({n} joiners, {} systems, {ops} operations)", RATES.len()),
            median(&mut lat),
            "ms",
            Some(1000.0),
            "lower",
        );
        rep.push("one joiner through the API proxy to 200, p99", percentile_of(&sorted, 99.0), "ms", None, "lower");
        Ok(rep)
    })
}
