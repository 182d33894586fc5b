//! `accessdesk bench observe` and `accessdesk bench observe-memory` (issue #11,
//! Reconciliation).
//!
//! 1. **Observe at Okta's limits** (`observe`): "50,000 accounts and 200,000 memberships
//!    from the Okta simulator with Okta's documented list limits. Target: within 110% of
//!    the minimum those limits allow." The embedded Okta simulator ([`crate::sim::okta`],
//!    in this process, on 127.0.0.1) holds 50,000 users (49,999 seeded people and the
//!    API's own admin) and 14 OKTA_GROUPs of realistic sizes (an all-staff group,
//!    departments, tools, a few small privileged ones) holding exactly 200,000
//!    memberships. One complete observation runs through the same path as
//!    `accessdesk observe`: [`Engine::from_config`] builds the real Okta adapter (HTTP,
//!    SSWS) with the system's limiter, and [`observe_all`] reads accounts, then groups,
//!    then each group's members, page by page, into a fresh store on disk.
//!
//!    **Steady state.** Okta's buckets are per minute and start full, so a read of a few
//!    hundred requests would never meet them: the first minute's allowance would cover
//!    most of it. The bench therefore runs the simulator at the *same documented rates*
//!    expressed per 1-second fixed window ([`per_window_limits`]: 600/min → 10 per
//!    window for `/api/v1/users`, 500/min → 8 for `/api/v1/groups`, 1,000/min → 16 for
//!    `/api/v1/groups/{id}`..., always rounded down, so the bench never allows more than
//!    the documented rate). `X-Rate-Limit-Reset` stays UTC epoch seconds, as Okta sends
//!    it; nothing in the adapter or limiter is told about the bench.
//!
//!    **The minimum.** At Okta's largest page sizes (users 200, groups 10,000, group
//!    members 1,000: [`crate::adapters::okta`]'s constants, which the simulator enforces
//!    as its maxima) the read needs `ceil(n / page)` requests per listing (the simulator
//!    sends a `next` link only when more items follow, so there is no empty last page;
//!    an empty listing still costs one request). Each phase's requests divided by its
//!    bucket's per-window limit is that phase's minimum in windows; the phases run one
//!    after another, so the minimum is their sum ([`minimum`]). A fixed window lets a
//!    phase that straddles window boundaries finish up to one window early, so a ratio
//!    a little under 100% is possible. The report gives the wall time of the read (the
//!    median of `runs`), the minimum, their ratio (target <= 110%), the requests made
//!    per bucket beside the minimum, and the 429s the simulator refused. Every run must
//!    store exactly 50,000 accounts and 200,000 memberships, or the bench fails.
//!
//! 2. **Memory** (`observe-memory`): "observing and classifying 1,000,000 memberships
//!    stays under 300 MB resident." The simulator (in this process, with limits too high
//!    to matter) holds 250,000 users in 4 groups of 250,000 (plus an empty privileged
//!    group); the store holds the 250,000 matching people and their intended grants
//!    (1% lack one of the groups: excess; 1% are meant to be in the privileged group:
//!    missing). A fresh child process (`bench observe-memory-child`) observes the system
//!    over HTTP and reconciles the run ([`reconcile_run`]), then reports its own peak
//!    resident set (VmHWM), so the simulator's memory does not count.

use super::{BenchReport, median};
use crate::adapters::Adapter;
use crate::adapters::okta::{GROUP_USERS_PAGE_MAX, GROUPS_PAGE_MAX, USERS_PAGE_MAX};
use crate::adapters::registry::SecretSource;
use crate::config::SystemsConfig;
use crate::config::systems::CredentialRef;
use crate::engine::observe::{Observer, Progress, SystemRead, observe_all, run_for};
use crate::engine::reconcile::reconcile_run;
use crate::engine::workers::{Engine, EngineConfig};
use crate::secrets::Secret;
use crate::sim::okta::{ADMIN_LOGIN, OktaHandle, OktaSimOptions, buckets};
use crate::store::Store;
use crate::{Error, Result};
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What the memory child reads from its environment: the database, the systems.toml
/// text (pointing at the parent's simulator) and the API token (never in argv).
pub const ENV_DB: &str = "ACCESSDESK_BENCH_DB";
pub const ENV_SYSTEMS: &str = "ACCESSDESK_BENCH_SYSTEMS";
/// The variable systems.toml names as the Okta credential (`env:...`).
pub const ENV_TOKEN: &str = "ACCESSDESK_BENCH_OKTA_TOKEN";

const SYSTEM: &str = "okta";
const ACTOR: &str = "bench";
/// The steady-state window the observe bench runs Okta's per-minute limits in.
const WINDOW: Duration = Duration::from_secs(1);

// ---------------------------------------------------------------------------------------
// Limits and the minimum
// ---------------------------------------------------------------------------------------

/// Okta's documented per-minute limits ([`buckets::DEFAULTS`]) as limits per `window`,
/// rounded down (never above the documented rate), at least 1.
pub fn per_window_limits(window: Duration) -> Vec<(&'static str, u32)> {
    buckets::DEFAULTS
        .iter()
        .map(|(b, per_minute)| {
            let n = u128::from(*per_minute) * window.as_millis() / 60_000;
            (*b, u32::try_from(n).unwrap_or(u32::MAX).max(1))
        })
        .collect()
}

/// Requests to list `items` at `page_size` per page: an empty listing is one request,
/// and no empty page follows a full last one (the simulator sends `next` only when more
/// items follow).
pub fn pages(items: u64, page_size: u64) -> u64 {
    items.div_ceil(page_size.max(1)).max(1)
}

/// One phase of a read: the requests it must make and the bucket they count against.
#[derive(Debug, Clone, PartialEq)]
pub struct PhaseMinimum {
    pub phase: &'static str,
    pub bucket: &'static str,
    pub requests: u64,
    pub per_window: u32,
}

impl PhaseMinimum {
    /// The least time the bucket's limit allows for the phase, in windows.
    pub fn windows(&self) -> f64 {
        self.requests as f64 / f64::from(self.per_window.max(1))
    }
}

/// The requests a full read must make at Okta's largest page sizes, phase by phase
/// (accounts, the group listing, each group's members), with the per-window limit of
/// the bucket each counts against. `groups_listed`: every group `GET /api/v1/groups`
/// returns (BUILT_IN and APP_GROUPs included); `member_counts`: the members of each
/// group the observer reads.
pub fn minimum(
    accounts: u64,
    groups_listed: u64,
    member_counts: &[u64],
    limits: &[(&'static str, u32)],
) -> Vec<PhaseMinimum> {
    let limit = |b: &str| {
        limits
            .iter()
            .find(|(name, _)| *name == b)
            .map_or(1, |(_, l)| *l)
    };
    vec![
        PhaseMinimum {
            phase: "accounts",
            bucket: buckets::USERS,
            requests: pages(accounts, u64::from(USERS_PAGE_MAX)),
            per_window: limit(buckets::USERS),
        },
        PhaseMinimum {
            phase: "groups",
            bucket: buckets::GROUPS,
            requests: pages(groups_listed, u64::from(GROUPS_PAGE_MAX)),
            per_window: limit(buckets::GROUPS),
        },
        PhaseMinimum {
            phase: "members",
            bucket: buckets::GROUP,
            requests: member_counts
                .iter()
                .map(|m| pages(*m, u64::from(GROUP_USERS_PAGE_MAX)))
                .sum(),
            per_window: limit(buckets::GROUP),
        },
    ]
}

// ---------------------------------------------------------------------------------------
// The simulated org
// ---------------------------------------------------------------------------------------

/// The Okta profile of a synthetic person: what accessdesk would write for them (so the
/// read correlates by HR id and shows no attribute drift).
fn okta_profile(p: &crate::model::Person) -> Map<String, Value> {
    let spec =
        crate::adapters::AccountSpec::for_person(p, crate::model::SystemKind::Okta, &p.email);
    let mut m = Map::new();
    m.insert("login".into(), json!(spec.login));
    m.insert("email".into(), json!(spec.email));
    m.insert("firstName".into(), json!(spec.given_name));
    m.insert("lastName".into(), json!(spec.family_name));
    m.insert("displayName".into(), json!(spec.display_name));
    m.insert("employeeNumber".into(), json!(spec.hris_id));
    for k in ["department", "title", "costCenter"] {
        if let Some(v) = spec.attributes.get(k) {
            m.insert(k.into(), json!(v));
        }
    }
    m
}

/// Seed `n` users (synthetic people 0..n) in the simulator; returns their ids.
fn seed_users(okta: &OktaHandle, n: usize) -> Result<Vec<String>> {
    let profiles = (0..n)
        .map(|i| okta_profile(&super::store::synthetic_person(i)))
        .collect();
    okta.seed_users(profiles)
        .map_err(|e| Error::Failed(format!("seeding the Okta simulator: {e}")))
}

fn seed_group(okta: &OktaHandle, name: &str, members: &[String]) -> Result<()> {
    let gid = okta.seed_group(name);
    okta.seed_members(&gid, members)
        .map_err(|e| Error::Failed(format!("seeding Okta group {name}: {e}")))?;
    Ok(())
}

/// The observe bench's groups, each a share of the accounts (parts per 100,000); the
/// last takes what is left so that memberships are exactly 4 × accounts.
const GROUP_SHARES: &[(&str, u64)] = &[
    ("all-staff", 100_000),
    ("dept-engineering", 30_000),
    ("dept-sales", 20_000),
    ("dept-support", 16_000),
    ("dept-marketing", 10_000),
    ("dept-finance", 4_000),
    ("vpn", 60_000),
    ("wiki", 80_000),
    ("github", 28_000),
    ("jira", 36_000),
    ("aws-prod", 6_000),
    ("admins", 100),
    ("break-glass", 10),
];
const REMAINDER_GROUP: &str = "contractors";
const MEMBERSHIPS_PER_ACCOUNT: u64 = 4;

/// Group sizes for `accounts` accounts: memberships total exactly 4 × accounts.
pub fn group_sizes(accounts: u64) -> Result<Vec<(&'static str, u64)>> {
    let mut out: Vec<(&'static str, u64)> = GROUP_SHARES
        .iter()
        .map(|(g, share)| (*g, (accounts * share / 100_000).max(1).min(accounts)))
        .collect();
    let total = accounts * MEMBERSHIPS_PER_ACCOUNT;
    let used: u64 = out.iter().map(|(_, n)| n).sum();
    let rest = total
        .checked_sub(used)
        .filter(|r| *r <= accounts)
        .ok_or_else(|| {
            Error::Failed(format!(
                "bench observe: {accounts} accounts are too few for its groups"
            ))
        })?;
    out.push((REMAINDER_GROUP, rest));
    Ok(out)
}

/// Which groups the catalogue manages (the rest are in Okta only: unmanaged).
const CATALOGUED: &[(&str, &str)] = &[
    ("all-staff", "low"),
    ("dept-engineering", "low"),
    ("vpn", "medium"),
    ("aws-prod", "privileged"),
    ("admins", "privileged"),
    ("break-glass", "privileged"),
];

fn systems_toml(base_url: &str, groups: &[(&str, &str)]) -> String {
    let mut t = format!(
        "[systems.{SYSTEM}]\nkind = \"okta\"\nbase_url = \"{base_url}\"\ncredential = \"env:{ENV_TOKEN}\"\n"
    );
    for (g, risk) in groups {
        t.push_str(&format!(
            "\n[[systems.{SYSTEM}.entitlements]]\nkind = \"group\"\nname = \"{g}\"\nrisk = \"{risk}\"\n"
        ));
    }
    t
}

/// The bench's credential: the token it generated, for `env:ACCESSDESK_BENCH_OKTA_TOKEN`.
struct BenchToken(Secret);

impl SecretSource for BenchToken {
    fn resolve(&self, cred: &CredentialRef) -> Result<Secret> {
        match cred {
            CredentialRef::Env(v) if v == ENV_TOKEN => Ok(self.0.clone()),
            other => Err(Error::Failed(format!(
                "bench observe: unexpected credential {other:?}"
            ))),
        }
    }
}

fn new_token() -> Secret {
    use rand::Rng;
    const CHARS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rng();
    Secret::new(format!(
        "00bench{}",
        (0..36)
            .map(|_| CHARS[rng.random_range(0..CHARS.len())] as char)
            .collect::<String>()
    ))
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::io("starting the async runtime", e))
}

// ---------------------------------------------------------------------------------------
// One observation, as `accessdesk observe` does it
// ---------------------------------------------------------------------------------------

struct Observed {
    run: i64,
    secs: f64,
    read: SystemRead,
    store: Store,
}

/// Observe `cfg`'s one system into `store` through the engine's adapter and limiter.
async fn observe_once(cfg: &SystemsConfig, store: Store, token: &BenchToken) -> Result<Observed> {
    let mut store = store;
    store.write(|tx| tx.sync_catalog(&cfg.catalog, ACTOR))?;
    let systems = vec![SYSTEM.to_string()];
    let (run, _) = run_for(&mut store, &systems, None, true, ACTOR)?;
    let store = Arc::new(Mutex::new(store));
    let (engine, problems) = Engine::from_config(
        cfg,
        store.clone(),
        token,
        crate::adapters::http::Timeouts::default(),
        EngineConfig {
            actor: ACTOR.into(),
            ..EngineConfig::default()
        },
    );
    if let Some(p) = problems.first() {
        return Err(Error::Failed(format!(
            "bench observe: system {} unavailable: {}",
            p.system, p.reason
        )));
    }
    let adapters: HashMap<String, Arc<dyn Adapter>> = engine
        .adapter(SYSTEM)
        .map(|a| (SYSTEM.to_string(), a.clone()))
        .into_iter()
        .collect();
    let unavailable = HashMap::new();
    let observer = Observer {
        store: &store,
        adapters: &adapters,
        catalog: &cfg.catalog,
        unavailable: &unavailable,
        actor: ACTOR,
    };
    let quiet = |_: &Progress| {};
    let t = Instant::now();
    let reads = observe_all(&observer, run, &systems, &quiet).await?;
    let secs = t.elapsed().as_secs_f64();
    drop(adapters);
    drop(engine);
    let store = Arc::try_unwrap(store)
        .map_err(|_| Error::Failed("bench observe: the store is still shared".into()))?
        .into_inner()
        .unwrap_or_else(|e| e.into_inner());
    let read = reads
        .into_iter()
        .next()
        .ok_or_else(|| Error::Failed("bench observe: no read came back".into()))?;
    if !read.complete {
        return Err(Error::Failed(format!(
            "bench observe: the read was not complete: {}",
            read.error.as_deref().unwrap_or("stopped")
        )));
    }
    Ok(Observed {
        run,
        secs,
        read,
        store,
    })
}

/// (accounts, memberships) the store holds for `run`.
fn stored_counts(store: &Store, run: i64) -> Result<(u64, u64)> {
    let count = |table: &str| -> Result<u64> {
        let n: i64 = store.conn().query_row(
            &format!("SELECT count(*) FROM {table} WHERE run_id = ?1 AND system = ?2"),
            rusqlite::params![run, SYSTEM],
            |r| r.get(0),
        )?;
        Ok(n.max(0) as u64)
    };
    Ok((count("observed_accounts")?, count("observed_members")?))
}

// ---------------------------------------------------------------------------------------
// bench observe
// ---------------------------------------------------------------------------------------

/// What one run of `bench observe` measured.
struct ObserveRun {
    secs: f64,
    /// Requests the simulator saw, per bucket, and how many were not 2xx.
    requests: BTreeMap<&'static str, u64>,
    failed: u64,
    refused: u64,
    /// Per bucket: seconds from its first request to its last answer.
    spans: BTreeMap<&'static str, f64>,
}

fn bucket_counts(
    log: &[crate::sim::okta::LoggedRequest],
) -> (
    BTreeMap<&'static str, u64>,
    u64,
    BTreeMap<&'static str, f64>,
) {
    let mut counts = BTreeMap::new();
    let mut failed = 0;
    let mut times: BTreeMap<&'static str, (std::time::SystemTime, std::time::SystemTime)> =
        BTreeMap::new();
    for r in log {
        let b = crate::sim::okta::bucket_for(&r.method, &r.path);
        *counts.entry(b).or_insert(0) += 1;
        if !(200..300).contains(&r.status) {
            failed += 1;
        }
        let e = times.entry(b).or_insert((r.at, r.at));
        e.0 = e.0.min(r.at);
        e.1 = e.1.max(r.at);
    }
    let spans = times
        .into_iter()
        .map(|(b, (a, z))| (b, z.duration_since(a).unwrap_or_default().as_secs_f64()))
        .collect();
    (counts, failed, spans)
}

/// `accounts`: the org's accounts (default 50,000: the seeded people and the API's
/// admin); memberships are 4 × accounts. `runs`: observations to take the median of.
pub fn run(accounts: usize, runs: usize) -> Result<BenchReport> {
    if accounts < 100 {
        return Err(Error::usage(
            format!("bench observe needs at least 100 accounts, not {accounts}"),
            "pass --people 100 or more (default 50,000)",
        ));
    }
    let sizes = group_sizes(accounts as u64)?;
    let limits = per_window_limits(WINDOW);
    let rt = runtime()?;
    let token = BenchToken(new_token());
    let (server, okta) = rt
        .block_on(crate::sim::okta::spawn(OktaSimOptions {
            rate_window: WINDOW,
            ..Default::default()
        }))
        .map_err(|e| Error::io("starting the Okta simulator", e))?;
    for (b, l) in &limits {
        okta.limits().set_limit(Some(b), *l);
    }
    okta.add_api_token(token.0.expose());
    eprintln!(
        "bench observe: seeding {accounts} accounts and {} memberships in {} groups",
        sizes.iter().map(|(_, n)| n).sum::<u64>(),
        sizes.len()
    );
    // Account 0 is the API's admin (every org has one); the rest are people.
    let admin = okta
        .user_by_login(ADMIN_LOGIN)
        .ok_or_else(|| Error::Failed("the Okta simulator has no admin user".into()))?
        .id;
    let mut ids = vec![admin];
    ids.extend(seed_users(&okta, accounts - 1)?);
    for (g, (name, size)) in sizes.iter().enumerate() {
        // A run of `size` accounts from an offset of its own, wrapping around.
        let offset = (g * 7919) % accounts;
        let members: Vec<String> = (0..*size as usize)
            .map(|k| ids[(offset + k) % accounts].clone())
            .collect();
        seed_group(&okta, name, &members)?;
    }
    // GET /api/v1/groups lists them all, and Everyone (BUILT_IN, not read).
    let groups_listed = okta.groups().len() as u64;
    let member_counts: Vec<u64> = sizes.iter().map(|(_, n)| *n).collect();
    let phases = minimum(accounts as u64, groups_listed, &member_counts, &limits);
    let min_windows: f64 = phases.iter().map(PhaseMinimum::windows).sum();
    let min_secs = min_windows * WINDOW.as_secs_f64();
    let min_requests: u64 = phases.iter().map(|p| p.requests).sum();
    let want_members: u64 = member_counts.iter().sum();

    let catalogued: Vec<(&str, &str)> = CATALOGUED.to_vec();
    let cfg = SystemsConfig::parse(
        Path::new("bench-systems.toml"),
        &systems_toml(&server.base_url(), &catalogued),
    )?;
    let mut results = Vec::new();
    for i in 0..runs.max(1) {
        // Every run starts with the simulator's buckets full.
        std::thread::sleep(WINDOW + Duration::from_millis(100));
        okta.clear_log();
        let refused_before = okta.limits().refused();
        let dir = tempfile::tempdir().map_err(|e| Error::io("temp dir", e))?;
        let store = Store::open(&dir.path().join("observe.db"))?;
        let o = rt.block_on(observe_once(&cfg, store, &token))?;
        let (stored_accounts, stored_members) = stored_counts(&o.store, o.run)?;
        if stored_accounts != accounts as u64
            || stored_members != want_members
            || o.read.accounts != accounts as i64
            || o.read.memberships != want_members as i64
        {
            return Err(Error::Failed(format!(
                "bench observe: run {} stored {stored_accounts} accounts and {stored_members} memberships \
                 (read reported {} and {}); want {accounts} and {want_members}",
                i + 1,
                o.read.accounts,
                o.read.memberships
            )));
        }
        let (requests, failed, spans) = bucket_counts(&okta.log());
        let refused = okta.limits().refused() - refused_before;
        eprintln!(
            "bench observe: run {}: {:.2} s, {} requests, {refused} refused",
            i + 1,
            o.secs,
            requests.values().sum::<u64>()
        );
        results.push(ObserveRun {
            secs: o.secs,
            requests,
            failed,
            refused,
            spans,
        });
    }
    drop(server);

    let mut secs: Vec<f64> = results.iter().map(|r| r.secs).collect();
    let each = secs
        .iter()
        .map(|s| format!("{s:.2}"))
        .collect::<Vec<_>>()
        .join(", ");
    let med = median(&mut secs);
    // The run whose time is the median (or nearest it) for the breakdown.
    let typical = results
        .iter()
        .min_by(|a, b| {
            (a.secs - med)
                .abs()
                .partial_cmp(&(b.secs - med).abs())
                .unwrap_or(std::cmp::Ordering::Equal)
        })
        .ok_or_else(|| Error::Failed("bench observe: no runs".into()))?;
    let n = results.len();
    let mut r = BenchReport::new("observe");
    r.push(
        &format!(
            "observe {accounts} accounts + {want_members} memberships (median of {n}: {each} s)"
        ),
        med,
        "s",
        None,
        "lower",
    );
    r.push(
        &format!(
            "  minimum Okta's limits allow (documented rates per {} s window)",
            WINDOW.as_secs()
        ),
        min_secs,
        "s",
        None,
        "lower",
    );
    r.push(
        "  wall time / minimum",
        100.0 * med / min_secs,
        "%",
        Some(110.0),
        "lower",
    );
    let made: u64 = typical.requests.values().sum();
    r.push(
        "  requests made (median run)",
        made as f64,
        "requests",
        None,
        "lower",
    );
    r.push(
        "  requests needed at the largest page sizes",
        min_requests as f64,
        "requests",
        None,
        "lower",
    );
    for p in &phases {
        let got = typical.requests.get(p.bucket).copied().unwrap_or(0);
        let span = typical.spans.get(p.bucket).copied().unwrap_or(0.0);
        r.push(
            &format!(
                "    {}: {got} made, {} needed, {} per window ({})",
                p.phase, p.requests, p.per_window, p.bucket
            ),
            span,
            "s",
            None,
            "lower",
        );
        r.push(
            &format!("      minimum for {}", p.phase),
            p.windows() * WINDOW.as_secs_f64(),
            "s",
            None,
            "lower",
        );
    }
    let others: u64 = typical
        .requests
        .iter()
        .filter(|(b, _)| !phases.iter().any(|p| p.bucket == **b))
        .map(|(_, n)| n)
        .sum();
    if others > 0 {
        r.push(
            "    requests to other buckets (median run)",
            others as f64,
            "requests",
            None,
            "lower",
        );
    }
    r.push(
        "  not 2xx (median run)",
        typical.failed as f64,
        "responses",
        None,
        "lower",
    );
    r.push(
        &format!("  429s the simulator refused (all {n} runs)"),
        results.iter().map(|r| r.refused).sum::<u64>() as f64,
        "requests",
        None,
        "lower",
    );
    Ok(r)
}

// ---------------------------------------------------------------------------------------
// bench observe-memory
// ---------------------------------------------------------------------------------------

const MEMORY_GROUPS: [&str; 4] = ["all-staff", "vpn", "wiki", "chat"];
/// Catalogued and intended for 1% of people, but empty in Okta: missing.
const MEMORY_PRIVILEGED: &str = "admins";

/// Peak resident memory by kind, sampled from /proc/self/status on a thread every 5 ms
/// (VmHWM gives the exact peak of the total; this tells the heap from SQLite's memory
/// map, whose file-backed pages count as resident too).
struct RssSampler {
    anon_kib: Arc<AtomicU64>,
    file_kib: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

fn status_kib(status: &str, key: &str) -> Option<u64> {
    status
        .lines()
        .find(|l| l.starts_with(key))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

impl RssSampler {
    fn start() -> Self {
        let anon_kib = Arc::new(AtomicU64::new(0));
        let file_kib = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (a, f, s) = (anon_kib.clone(), file_kib.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                if let Ok(st) = std::fs::read_to_string("/proc/self/status") {
                    a.fetch_max(status_kib(&st, "RssAnon:").unwrap_or(0), Ordering::Relaxed);
                    f.fetch_max(status_kib(&st, "RssFile:").unwrap_or(0), Ordering::Relaxed);
                }
                std::thread::sleep(Duration::from_millis(5));
            }
        });
        RssSampler {
            anon_kib,
            file_kib,
            stop,
            thread: Some(thread),
        }
    }

    /// (anonymous, file-backed) peaks in MiB since the last call.
    fn take(&self) -> (f64, f64) {
        let mib = |v: &AtomicU64| v.swap(0, Ordering::Relaxed) as f64 / 1024.0;
        (mib(&self.anon_kib), mib(&self.file_kib))
    }
}

impl Drop for RssSampler {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The child: observe the parent's simulator, reconcile the run, print one JSON object
/// with the phase times, the counts and the peak resident set.
pub fn memory_child() -> Result<()> {
    let sampler = RssSampler::start();
    let var =
        |name: &str| std::env::var(name).map_err(|_| Error::Failed(format!("{name} is not set")));
    let db = var(ENV_DB)?;
    let cfg = SystemsConfig::parse(Path::new("bench-systems.toml"), &var(ENV_SYSTEMS)?)?;
    let token = BenchToken(Secret::new(var(ENV_TOKEN)?));
    let rt = runtime()?;
    let t = Instant::now();
    let store = Store::open(Path::new(&db))?;
    let o = rt.block_on(observe_once(&cfg, store, &token))?;
    drop(rt);
    let observe_secs = t.elapsed().as_secs_f64();
    let rss_after_observe = super::console::peak_rss_mib();
    let (observe_anon, observe_file) = sampler.take();
    let mut store = o.store;
    let t = Instant::now();
    let rec = reconcile_run(&mut store, &cfg.catalog, o.run, ACTOR)?;
    let reconcile_secs = t.elapsed().as_secs_f64();
    let (reconcile_anon, reconcile_file) = sampler.take();
    let (accounts, memberships) = stored_counts(&store, o.run)?;
    println!(
        "{}",
        json!({
            "observe_secs": observe_secs,
            "reconcile_secs": reconcile_secs,
            "accounts": accounts,
            "memberships": memberships,
            "findings": rec.findings,
            "complete": rec.complete,
            "peak_rss_after_observe_mib": rss_after_observe,
            "observe_anon_mib": observe_anon,
            "observe_file_mib": observe_file,
            "reconcile_anon_mib": reconcile_anon,
            "reconcile_file_mib": reconcile_file,
            "peak_rss_mib": super::console::peak_rss_mib(),
        })
    );
    Ok(())
}

/// `people`: people and Okta users (default 250,000), each in 4 groups.
pub fn run_memory(people: usize) -> Result<BenchReport> {
    if people < 100 {
        return Err(Error::usage(
            format!("bench observe-memory needs at least 100 people, not {people}"),
            "pass --people 100 or more (default 250,000)",
        ));
    }
    let rt = runtime()?;
    let token = new_token();
    let (server, okta) = rt
        .block_on(crate::sim::okta::spawn(OktaSimOptions {
            rate_window: WINDOW,
            rate_limit: Some(1_000_000),
            ..Default::default()
        }))
        .map_err(|e| Error::io("starting the Okta simulator", e))?;
    okta.add_api_token(token.expose());
    let want_members = (people * MEMORY_GROUPS.len()) as u64;
    eprintln!(
        "bench observe-memory: seeding {people} Okta users, {want_members} memberships, and the people and intended grants"
    );
    let ids = seed_users(&okta, people)?;
    for g in MEMORY_GROUPS {
        seed_group(&okta, g, &ids)?;
    }
    seed_group(&okta, MEMORY_PRIVILEGED, &[])?;
    drop(ids);
    let mut catalogued: Vec<(&str, &str)> = MEMORY_GROUPS.iter().map(|g| (*g, "low")).collect();
    catalogued.push((MEMORY_PRIVILEGED, "privileged"));
    let systems = systems_toml(&server.base_url(), &catalogued);
    let cfg = SystemsConfig::parse(Path::new("bench-systems.toml"), &systems)?;
    let dir = tempfile::tempdir().map_err(|e| Error::io("temp dir", e))?;
    let db = dir.path().join("observe-memory.db");
    {
        let mut store = Store::open(&db)?;
        let persons: Vec<crate::model::Person> =
            (0..people).map(super::store::synthetic_person).collect();
        let ent = |g: &str| format!("{SYSTEM}:group:{g}");
        // 1 in 100 is not meant to be in chat (excess); 1 in 100 is meant to be an admin
        // (missing: nobody is in the group).
        let grants: Vec<(usize, String)> = (0..people)
            .flat_map(|i| {
                let mut gs: Vec<String> = MEMORY_GROUPS
                    .iter()
                    .filter(|g| !(i % 100 == 1 && **g == "chat"))
                    .map(|g| ent(g))
                    .collect();
                if i % 100 == 2 {
                    gs.push(ent(MEMORY_PRIVILEGED));
                }
                gs.into_iter().map(move |e| (i, e))
            })
            .collect();
        store.write(|tx| {
            tx.sync_catalog(&cfg.catalog, ACTOR)?;
            tx.bulk_insert_people(&persons, ACTOR)?;
            tx.bulk_insert_intended(
                grants.iter().map(|(i, e)| crate::store::grants::BulkGrant {
                    person_id: &persons[*i].hris_id,
                    entitlement: e,
                    rule: "bench",
                    requires_approval: false,
                    expires_at: None,
                }),
                ACTOR,
            )?;
            Ok(())
        })?;
    }
    eprintln!("bench observe-memory: observing and reconciling in a child process");
    let exe = std::env::current_exe().map_err(|e| Error::io("finding our own binary", e))?;
    let out = std::process::Command::new(&exe)
        .args(["bench", "observe-memory-child"])
        .env(ENV_DB, &db)
        .env(ENV_SYSTEMS, &systems)
        .env(ENV_TOKEN, token.expose())
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| Error::io("running the observe-memory child", e))?;
    drop(server);
    drop(rt);
    if !out.status.success() {
        return Err(Error::Failed(format!(
            "the observe-memory child failed: {}",
            crate::redact::redact_text(String::from_utf8_lossy(&out.stderr).trim())
        )));
    }
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)
        .map_err(|e| Error::Failed(format!("the observe-memory child printed bad JSON: {e}")))?;
    let accounts = v["accounts"].as_u64().unwrap_or(0);
    let memberships = v["memberships"].as_u64().unwrap_or(0);
    // The people, and the API's own admin.
    if accounts != people as u64 + 1 || memberships != want_members {
        return Err(Error::Failed(format!(
            "bench observe-memory: the child stored {accounts} accounts and {memberships} memberships; want {} and {want_members}",
            people + 1
        )));
    }
    let num = |k: &str| v[k].as_f64().unwrap_or(f64::NAN);
    let mut r = BenchReport::new("observe-memory");
    r.push(
        &format!("observe + classify {memberships} memberships, {accounts} accounts: peak RSS"),
        num("peak_rss_mib"),
        "MiB",
        Some(300.0),
        "lower",
    );
    r.push(
        "  peak RSS when the observation was stored",
        num("peak_rss_after_observe_mib"),
        "MiB",
        None,
        "lower",
    );
    for (phase, key) in [("observing", "observe"), ("reconciling", "reconcile")] {
        r.push(
            &format!("  {phase}: peak heap (RssAnon, sampled)"),
            num(&format!("{key}_anon_mib")),
            "MiB",
            None,
            "lower",
        );
        r.push(
            &format!("  {phase}: peak file-backed (RssFile: SQLite's mmap)"),
            num(&format!("{key}_file_mib")),
            "MiB",
            None,
            "lower",
        );
    }
    r.push(
        "  observe (HTTP, simulator limits out of the way)",
        num("observe_secs"),
        "s",
        None,
        "lower",
    );
    r.push(
        "  reconcile_run (correlate, classify, store findings)",
        num("reconcile_secs"),
        "s",
        None,
        "lower",
    );
    r.push("  findings", num("findings"), "findings", None, "lower");
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limit(limits: &[(&str, u32)], b: &str) -> u32 {
        limits.iter().find(|(n, _)| *n == b).unwrap().1
    }

    #[test]
    fn documented_rates_per_second_round_down() {
        let l = per_window_limits(Duration::from_secs(1));
        assert_eq!(limit(&l, buckets::USERS), 10); // 600/min
        assert_eq!(limit(&l, buckets::GROUPS), 8); // 500/min: 8.33
        assert_eq!(limit(&l, buckets::GROUP), 16); // 1,000/min: 16.67
        assert_eq!(limit(&l, buckets::OTHER), 20); // 1,200/min
        let l = per_window_limits(Duration::from_secs(60));
        assert_eq!(limit(&l, buckets::USERS), 600, "a minute is Okta's own");
    }

    #[test]
    fn the_minimum_counts_pages_at_the_largest_sizes() {
        assert_eq!(pages(50_000, 200), 250);
        assert_eq!(pages(50_001, 200), 251);
        assert_eq!(pages(0, 1000), 1, "an empty listing is still one request");
        assert_eq!(pages(1000, 1000), 1, "no empty page after a full last one");
        let sizes = group_sizes(50_000).unwrap();
        assert_eq!(sizes.iter().map(|(_, n)| n).sum::<u64>(), 200_000);
        assert!(sizes.iter().all(|(_, n)| (1..=50_000).contains(n)));
        let counts: Vec<u64> = sizes.iter().map(|(_, n)| *n).collect();
        let l = per_window_limits(Duration::from_secs(1));
        let m = minimum(50_000, 15, &counts, &l);
        let req: Vec<u64> = m.iter().map(|p| p.requests).collect();
        // 50 + 15 + 10 + 8 + 5 + 2 + 30 + 40 + 14 + 18 + 3 + 1 + 1 + 5 member pages.
        assert_eq!(req, vec![250, 1, 202]);
        let windows: f64 = m.iter().map(PhaseMinimum::windows).sum();
        assert!((windows - (25.0 + 1.0 / 8.0 + 202.0 / 16.0)).abs() < 1e-9);
    }

    /// At the bench's settings the engine's limiter keeps a full read within Okta's
    /// per-window limits: no 429s, every account and membership stored, and no request
    /// beyond the minimum (a small org, so it takes a few seconds).
    #[test]
    fn a_read_at_the_documented_rates_is_never_refused() {
        let limits = per_window_limits(WINDOW);
        let rt = runtime().unwrap();
        let token = BenchToken(new_token());
        let (server, okta) = rt
            .block_on(crate::sim::okta::spawn(OktaSimOptions {
                rate_window: WINDOW,
                ..Default::default()
            }))
            .unwrap();
        for (b, l) in &limits {
            okta.limits().set_limit(Some(b), *l);
        }
        okta.add_api_token(token.0.expose());
        // 2,399 people and the admin: 12 user pages (more than a window's 10).
        let ids = seed_users(&okta, 2_399).unwrap();
        for (g, n) in [("a", 2_399usize), ("b", 1_000), ("c", 1)] {
            seed_group(&okta, g, &ids[..n]).unwrap();
        }
        let cfg = SystemsConfig::parse(
            Path::new("t.toml"),
            &systems_toml(&server.base_url(), &[("a", "low")]),
        )
        .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("t.db")).unwrap();
        let o = rt.block_on(observe_once(&cfg, store, &token)).unwrap();
        assert_eq!(stored_counts(&o.store, o.run).unwrap(), (2_400, 3_400));
        assert_eq!(okta.limits().refused(), 0, "nothing was refused");
        let (made, failed, _) = bucket_counts(&okta.log());
        let m = minimum(
            2_400,
            okta.groups().len() as u64,
            &[2_399, 1_000, 1],
            &limits,
        );
        for p in &m {
            assert_eq!(made.get(p.bucket).copied(), Some(p.requests), "{p:?}");
        }
        assert_eq!(failed, 0);
        // Listings, plus one GET for the admin: an account no group showed is asked
        // about (it may have vanished during the read).
        assert_eq!(made.values().sum::<u64>(), 12 + 1 + 3 + 1 + 1 + 1);
    }
}
