//! `accessdesk bench wave`: onboard 2,000 people into 5 simulated systems (Okta
//! simulators), each with its own rate limit and 20-50 ms latency; four of them depend on
//! the first. Compared with the theoretical minimum, the largest over systems of
//! (requests in a rate-limit bucket ÷ that bucket's allowed rate), and, in the same run,
//! with a sequential baseline that provisions one system after another.

use super::BenchReport;
use crate::adapters::http::{RateLimiter, Timeouts};
use crate::adapters::registry::{AdapterContext, build_with};
use crate::config::SystemsConfig;
use crate::config::systems::GuardThresholds;
use crate::engine::apply::{apply_plan, make_plan};
use crate::engine::plan::Scope;
use crate::engine::workers::{Engine, EngineConfig, SystemRuntime};
use crate::model::{Grant, Person};
use crate::sim::SimServer;
use crate::sim::fault::FaultProfile;
use crate::sim::okta::{OktaHandle, OktaSimOptions, spawn};
use crate::store::Store;
use crate::{Error, Result};
use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const TOKEN: &str = "00bench-wave-token";
/// Allowed requests per second per bucket, by system.
pub const RATES: [u32; 5] = [200, 160, 140, 120, 100];

pub struct World {
    pub sims: Vec<(SimServer, OktaHandle)>,
    pub cfg: SystemsConfig,
    pub store: Arc<Mutex<Store>>,
    _dir: tempfile::TempDir,
}

impl World {
    /// The world's database file.
    pub fn db(&self) -> std::path::PathBuf {
        self._dir.path().join("wave.db")
    }
}

pub async fn world(people: usize) -> Result<World> {
    let mut sims = Vec::new();
    let mut toml = String::new();
    for (i, rate) in RATES.iter().enumerate() {
        let (server, handle) = spawn(OktaSimOptions {
            faults: FaultProfile {
                latency: Some((Duration::from_millis(20), Duration::from_millis(50))),
                ..FaultProfile::none()
            },
            rate_window: Duration::from_secs(1),
            rate_limit: Some(*rate),
            ..Default::default()
        })
        .await
        .map_err(|e| Error::io("starting a simulator", e))?;
        handle.add_api_token(TOKEN);
        handle.seed_group("everyone");
        let deps = if i == 0 {
            String::new()
        } else {
            "\"s0\"".to_string()
        };
        toml.push_str(&format!(
            "[systems.s{i}]\nkind = \"okta\"\nbase_url = \"{}\"\ncredential = \"keyring:t\"\ndepends_on = [{deps}]\nrate_limit = {{ requests_per_minute = {}, concurrency = 12 }}\n",
            server.base_url(),
            rate * 60 * 2
        ));
        sims.push((server, handle));
    }
    let cfg = SystemsConfig::parse(Path::new("systems.toml"), &toml)?;
    let dir = tempfile::tempdir().map_err(|e| Error::io("temp dir", e))?;
    let mut store = Store::open(&dir.path().join("wave.db"))?;
    store.write(|tx| {
        for i in 0..people {
            let p = Person::new(
                &format!("J{i:05}"),
                &format!("Joiner{i}"),
                "Wave",
                &format!("j{i}@example.com"),
            );
            tx.upsert_person(&p, "bench")?;
            let grants: Vec<Grant> = (0..RATES.len())
                .map(|s| Grant {
                    person_id: p.hris_id.clone(),
                    entitlement: format!("s{s}:group:everyone")
                        .parse()
                        .unwrap_or_else(|_| unreachable!()),
                    rule: "everyone".into(),
                    requires_approval: false,
                    expires_at: None,
                })
                .collect();
            tx.replace_intended_grants(&p.hris_id, &grants, "bench")?;
        }
        Ok(())
    })?;
    Ok(World {
        sims,
        cfg,
        store: Arc::new(Mutex::new(store)),
        _dir: dir,
    })
}

pub fn engine(w: &World) -> Result<Arc<Engine>> {
    let mut systems = HashMap::new();
    for (name, entry) in &w.cfg.catalog.systems {
        let ctx = AdapterContext {
            entry,
            secrets: &crate::adapters::kit::testkit::FixedSecret::new(TOKEN),
            limiter: crate::adapters::registry::limiter_for(entry),
            timeouts: Timeouts::default(),
        };
        let _ = RateLimiter::new; // (the registry builds the per-system limiter from rate_limit)
        systems.insert(
            name.clone(),
            SystemRuntime::new(build_with(ctx)?, entry.system.kind, 12, false),
        );
    }
    let ec = EngineConfig {
        idle_poll: Duration::from_millis(5),
        actor: "bench".into(),
        ..EngineConfig::default()
    };
    Ok(Arc::new(Engine::new(
        w.store.clone(),
        Arc::new(w.cfg.catalog.clone()),
        systems,
        ec,
    )))
}

fn plan_apply(w: &World, scope: &Scope) -> Result<usize> {
    let mut s = w.store.lock().unwrap_or_else(|p| p.into_inner());
    let plan = make_plan(
        &mut s,
        &w.cfg.catalog,
        &GuardThresholds::default(),
        scope,
        "bench",
    )?;
    let n = plan.ops.len();
    apply_plan(&mut s, &w.cfg.catalog, &plan.id, "bench", None)?;
    Ok(n)
}

/// `runs` waves (the figure is their median, each run listed), then one sequential
/// baseline.
pub fn run(people: usize, runs: usize) -> Result<BenchReport> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| Error::io("runtime", e))?;
    rt.block_on(async {
        // Requests per bucket per system: creations (users bucket) and memberships (group
        // bucket) run in separate buckets, so each system needs people ÷ rate seconds.
        let t_min = RATES
            .iter()
            .map(|r| people as f64 / *r as f64)
            .fold(0.0, f64::max);
        // The engine: everything at once, ordered by dependencies.
        let (mut times, mut ops) = (Vec::new(), 0);
        for i in 0..runs.max(1) {
            let w = world(people).await?;
            ops = plan_apply(&w, &Scope::default())?;
            eprintln!(
                "bench wave: run {} of {}, {ops} operations",
                i + 1,
                runs.max(1)
            );
            let t = Instant::now();
            let summary = engine(&w)?.run_until_idle(None).await?;
            let parallel = t.elapsed().as_secs_f64();
            if summary.failed > 0 || summary.succeeded != ops {
                return Err(Error::Failed(format!(
                    "the wave did not complete: {summary:?} of {ops} operations"
                )));
            }
            times.push(parallel);
        }
        let each: Vec<String> = times
            .iter()
            .map(|t| format!("{:.1}%", 100.0 * t / t_min))
            .collect();
        let mut sorted = times.clone();
        let parallel = super::median(&mut sorted);
        // The baseline: one system after another.
        eprintln!("bench wave: the sequential baseline");
        let w = world(people).await?;
        let t = Instant::now();
        for i in 0..RATES.len() {
            plan_apply(
                &w,
                &Scope {
                    system: Some(format!("s{i}")),
                    person: None,
                },
            )?;
            engine(&w)?.run_until_idle(None).await?;
        }
        let sequential = t.elapsed().as_secs_f64();
        let mut r = BenchReport::new("wave");
        r.push(
            &format!(
                "onboard {people} people x {} systems ({ops} operations), median of {}",
                RATES.len(),
                times.len()
            ),
            parallel,
            "s",
            Some(1.05 * t_min),
            "lower",
        );
        r.push(
            "theoretical minimum (max over systems of requests / allowed rate)",
            t_min,
            "s",
            None,
            "lower",
        );
        r.push(
            &format!(
                "engine time as % of the theoretical minimum (runs: {})",
                each.join(", ")
            ),
            100.0 * parallel / t_min,
            "%",
            Some(105.0),
            "lower",
        );
        r.push(
            "sequential baseline (one system after another)",
            sequential,
            "s",
            None,
            "lower",
        );
        Ok(r)
    })
}
