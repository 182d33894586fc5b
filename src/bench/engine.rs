//! `accessdesk bench engine`: the engine's own ceiling, and enqueueing at company scale.
//!
//! 1. **Throughput.** 10,000 people × 2 systems (the second depends on the first) × (an
//!    account and 4 groups) = 100,000 operations, run by the real scheduler, store and
//!    identity checks against in-process directories ([`crate::sim::memory`]: stateful,
//!    no HTTP, no rate limit, no latency), so what is measured is the engine alone. The
//!    store is a file on disk (WAL), as in production. Reported in operations per second,
//!    the median of `runs`; every run is checked (every account and membership exists in
//!    the directories, nothing was created twice, nothing failed). The ceiling is timed
//!    with every operation already a queue row; a second run of each, reported beside it,
//!    makes the rows from the plan's backlog while it runs (store/backlog.rs), as
//!    `accessdesk run` does after applying a large plan.
//! 2. **Enqueueing at company scale** (`apply --no-run`): 100,000 people whose plan has
//!    700,000 operations (an account in 3 systems and 4 groups each). The plan is made
//!    here; applying it runs in a fresh child process (`bench engine-enqueue`), so its
//!    time and peak memory are those of `apply --no-run` alone. Applying makes rows for
//!    the first 20,000 operations and leaves the rest in the plan's backlog, so its time
//!    does not grow with the plan.

use super::{BenchReport, median};
use crate::config::SystemsConfig;
use crate::config::systems::GuardThresholds;
use crate::engine::apply::{apply_plan, make_plan, materialise_all};
use crate::engine::plan::Scope;
use crate::engine::workers::{Engine, EngineConfig, SystemRuntime};
use crate::model::SystemKind;
use crate::sim::memory::MemoryDirectory;
use crate::store::Store;
use crate::{Error, Result};
use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Where the enqueue child finds the database and the plan.
pub const ENV_DB: &str = "ACCESSDESK_BENCH_DB";
pub const ENV_PLAN: &str = "ACCESSDESK_BENCH_PLAN";

const GROUPS: [&str; 4] = ["all", "eng", "vpn", "wiki"];

fn catalog(systems: &[&str], chain: bool) -> Result<SystemsConfig> {
    let mut text = String::new();
    for (i, s) in systems.iter().enumerate() {
        let deps = if chain && i > 0 {
            format!("depends_on = [\"{}\"]\n", systems[0])
        } else {
            String::new()
        };
        text.push_str(&format!(
            "[systems.{s}]\nkind = \"scim\"\nbase_url = \"http://127.0.0.1:9\"\n{deps}\n"
        ));
    }
    SystemsConfig::parse(Path::new("bench-systems.toml"), &text)
}

/// People with `groups` intended groups in each of `systems` (and so an account in each).
fn seed(store: &mut Store, people: usize, systems: &[&str], groups: &[&str]) -> Result<()> {
    let ents: Vec<String> = systems
        .iter()
        .flat_map(|s| groups.iter().map(move |g| format!("{s}:group:{g}")))
        .collect();
    let ents: Vec<&str> = ents.iter().map(String::as_str).collect();
    seed_grants(store, people, &ents)
}

/// People, each with the same intended grants `ents` (`system:group:name`).
fn seed_grants(store: &mut Store, people: usize, ents: &[&str]) -> Result<()> {
    let persons: Vec<crate::model::Person> =
        (0..people).map(super::store::synthetic_person).collect();
    store.write(|tx| super::store::insert_people_with_grants(tx, &persons, ents))
}

/// Plan and apply everything (the plan is approved past the mass-change guard). With
/// `rows_first`, every operation is made a queue row before the run (the engine ceiling
/// times the workers alone); without, the run makes them from the plan's backlog as it
/// goes, as `accessdesk run` does after a large apply.
fn plan_and_apply(store: &mut Store, cfg: &SystemsConfig, rows_first: bool) -> Result<usize> {
    let plan = make_plan(
        store,
        &cfg.catalog,
        &GuardThresholds::default(),
        &Scope::default(),
        "bench",
    )?;
    let n = plan.ops.len();
    apply_plan(store, &cfg.catalog, &plan.id, "bench", Some("bench"))?;
    if rows_first {
        materialise_all(store, &cfg.catalog, "bench")?;
    }
    Ok(n)
}

struct ThroughputRun {
    ops: usize,
    secs: f64,
}

fn throughput_once(people: usize, concurrency: usize, rows_first: bool) -> Result<ThroughputRun> {
    let systems = ["m0", "m1"];
    let cfg = catalog(&systems, true)?;
    let dir = tempfile::tempdir().map_err(|e| Error::io("temp dir", e))?;
    let mut store = Store::open(&dir.path().join("engine.db"))?;
    seed(&mut store, people, &systems, &GROUPS)?;
    let ops = plan_and_apply(&mut store, &cfg, rows_first)?;
    let dirs: Vec<Arc<MemoryDirectory>> = systems
        .iter()
        .map(|s| Arc::new(MemoryDirectory::new(s)))
        .collect();
    let runtimes: HashMap<String, SystemRuntime> = systems
        .iter()
        .zip(&dirs)
        .map(|(s, d)| {
            (
                s.to_string(),
                SystemRuntime::new(d.clone(), SystemKind::Scim, concurrency, false),
            )
        })
        .collect();
    let engine = Arc::new(Engine::new(
        Arc::new(Mutex::new(store)),
        Arc::new(cfg.catalog.clone()),
        runtimes,
        EngineConfig {
            idle_poll: Duration::from_millis(5),
            actor: "bench".into(),
            ..EngineConfig::default()
        },
    ));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| Error::io("runtime", e))?;
    eprintln!("bench engine: running {ops} operations");
    let t = Instant::now();
    let summary = rt.block_on(engine.run_until_idle(None))?;
    let secs = t.elapsed().as_secs_f64();
    // The run counts only if it really did everything, once.
    let want_members = people * GROUPS.len();
    for d in &dirs {
        if d.account_count() != people
            || d.membership_count() != want_members
            || d.max_creates() > 1
        {
            return Err(Error::Failed(format!(
                "the engine bench did not complete: {} accounts (want {people}), {} memberships (want {want_members}), max creates per login {}",
                d.account_count(),
                d.membership_count(),
                d.max_creates()
            )));
        }
    }
    if summary.succeeded != ops || summary.failed > 0 {
        return Err(Error::Failed(format!(
            "the engine bench did not complete: {summary:?} of {ops} operations"
        )));
    }
    Ok(ThroughputRun { ops, secs })
}

/// The enqueue child: apply the stored plan, then print its time and peak memory.
pub fn enqueue_child() -> Result<()> {
    let db = std::env::var_os(ENV_DB).ok_or_else(|| Error::Failed(format!("{ENV_DB} unset")))?;
    let plan = std::env::var(ENV_PLAN).map_err(|_| Error::Failed(format!("{ENV_PLAN} unset")))?;
    let cfg = catalog(&ENQUEUE_SYSTEMS, false)?;
    let t = Instant::now();
    let mut store = Store::open(Path::new(&db))?;
    let report = apply_plan(&mut store, &cfg.catalog, &plan, "bench", Some("bench"))?;
    let secs = t.elapsed().as_secs_f64();
    println!(
        "{}",
        serde_json::json!({
            "secs": secs,
            "queued": report.queued,
            "peak_rss_mib": super::console::peak_rss_mib(),
        })
    );
    Ok(())
}

const ENQUEUE_SYSTEMS: [&str; 3] = ["okta", "google", "slack"];
/// 3 accounts and 4 memberships per person: 7 operations.
const ENQUEUE_GRANTS: [&str; 4] = [
    "okta:group:all",
    "okta:group:eng",
    "google:group:all",
    "slack:group:all",
];

struct EnqueueRun {
    ops: usize,
    plan_secs: f64,
    apply_secs: f64,
    rss_mib: f64,
}

fn enqueue_once(people: usize) -> Result<EnqueueRun> {
    let cfg = catalog(&ENQUEUE_SYSTEMS, false)?;
    let dir = tempfile::tempdir().map_err(|e| Error::io("temp dir", e))?;
    let db = dir.path().join("enqueue.db");
    let (plan_id, ops, plan_secs) = {
        let mut store = Store::open(&db)?;
        // An account in each of 3 systems and 4 groups: 2 in the first, 1 in each other.
        seed_grants(&mut store, people, &ENQUEUE_GRANTS)?;
        let t = Instant::now();
        let plan = make_plan(
            &mut store,
            &cfg.catalog,
            &GuardThresholds::default(),
            &Scope::default(),
            "bench",
        )?;
        (plan.id.clone(), plan.ops.len(), t.elapsed().as_secs_f64())
    };
    eprintln!("bench engine: enqueueing {ops} operations for {people} people (apply --no-run)");
    let exe = std::env::current_exe().map_err(|e| Error::io("finding our own binary", e))?;
    let out = std::process::Command::new(&exe)
        .args(["bench", "engine-enqueue"])
        .env(ENV_DB, &db)
        .env(ENV_PLAN, &plan_id)
        .output()
        .map_err(|e| Error::io("running the enqueue child", e))?;
    if !out.status.success() {
        return Err(Error::Failed(format!(
            "the enqueue child failed: {}",
            String::from_utf8_lossy(&out.stderr)
        )));
    }
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)
        .map_err(|e| Error::Failed(format!("the enqueue child printed bad JSON: {e}")))?;
    if v["queued"].as_u64() != Some(ops as u64) {
        return Err(Error::Failed(format!(
            "the enqueue child queued {} of {ops} operations",
            v["queued"]
        )));
    }
    Ok(EnqueueRun {
        ops,
        plan_secs,
        apply_secs: v["secs"].as_f64().unwrap_or(f64::NAN),
        rss_mib: v["peak_rss_mib"].as_f64().unwrap_or(f64::NAN),
    })
}

/// `people`: the throughput bench's people (default 10,000: 100,000 operations);
/// `company`: the enqueue bench's people (default 100,000), 0 to skip it.
pub fn run(people: usize, company: usize, runs: usize) -> Result<BenchReport> {
    let mut r = BenchReport::new("engine");
    let (mut rates, mut fed, mut ops) = (Vec::new(), Vec::new(), 0);
    for _ in 0..runs.max(1) {
        let run = throughput_once(people, 64, true)?;
        ops = run.ops;
        rates.push(run.ops as f64 / run.secs);
        let run = throughput_once(people, 64, false)?;
        fed.push(run.ops as f64 / run.secs);
    }
    let n = rates.len();
    let (lo, hi) = (
        rates.iter().copied().fold(f64::INFINITY, f64::min),
        rates.iter().copied().fold(0.0, f64::max),
    );
    r.push(
        &format!(
            "engine ceiling: {ops} operations, in-process directories (median of {n}; range {lo:.0}-{hi:.0})"
        ),
        median(&mut rates),
        "ops/s",
        Some(10_000.0),
        "higher",
    );
    r.push(
        "  the same, its rows made from the plan's backlog while running",
        median(&mut fed),
        "ops/s",
        None,
        "higher",
    );
    if company > 0 {
        let (mut plan, mut apply, mut rss, mut ops) = (Vec::new(), Vec::new(), Vec::new(), 0);
        for _ in 0..runs.max(1) {
            let e = enqueue_once(company)?;
            ops = e.ops;
            plan.push(e.plan_secs);
            apply.push(e.apply_secs);
            rss.push(e.rss_mib);
        }
        r.push(
            &format!("apply --no-run: enqueue {ops} operations for {company} people"),
            median(&mut apply),
            "s",
            Some(5.0),
            "lower",
        );
        r.push(
            "  peak RSS of that process",
            median(&mut rss),
            "MiB",
            Some(300.0),
            "lower",
        );
        r.push(
            "  (making the plan beforehand)",
            median(&mut plan),
            "s",
            None,
            "lower",
        );
    }
    Ok(r)
}
