//! `accessdesk demo`: the whole product on a fresh machine with nothing but the repo.
//!
//! [`Demo::start`] starts an embedded simulator for every system the demo has one for
//! ([`sims::SIMULATORS`]), creates a temporary home with systems.toml and policies.toml
//! made from `demo/` (embedded in the binary), stores a fresh credential per simulator in
//! the kernel's session keyring (never the persistent keyring) under the service
//! [`KEYRING_SERVICE`] (in memory, with a notice, when there is none), imports the seeded company from `demo/people.csv`, and plans
//! and applies the onboarding wave. The engine and the timed situations of
//! [`scenario`] are then started by the caller: the console, or [`headless::run`].
//!
//! What the console uses: the public fields of [`Demo`] (home, database, configuration,
//! the shared store and engine, notices), [`Demo::spawn_engine`] (runs until told to stop,
//! picking up new work as it comes), [`Demo::spawn_scenario`], [`Demo::take_events`],
//! [`Demo::timeline`] and [`Demo::scenario_log`] (what is planned and what happened),
//! [`Demo::clear_injected_failures`] (the triage fix), [`Demo::summary`] and
//! [`Demo::shutdown`].

pub mod console_bridge;
pub mod headless;
pub mod hr;
pub mod reconcile;
pub mod scenario;
pub mod sims;
pub mod summary;

use crate::adapters::http::Timeouts;
use crate::config::{Home, SystemsConfig};
use crate::engine::apply::{ApplyReport, apply_plan, make_plan};
use crate::engine::plan::Scope;
use crate::engine::workers::{Engine, EngineConfig, EngineEvent, RunSummary};
use crate::model::Person;
use crate::policy::PolicySet;
use crate::secrets::{BackendKind, Keychain};
use crate::sim::SimServer;
use crate::store::{NewAuditEvent, Store};
use crate::{Error, Result};
use scenario::{ScenarioEvent, ScenarioLog, Timeline};
use serde_json::json;
use sims::{DemoSim, SimSetup};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

pub use summary::DemoSummary;

/// The keychain service the demo's credentials live under.
pub const KEYRING_SERVICE: &str = "accessdesk-demo";
/// The audit actor for what the demo does on the admin's behalf.
pub const ACTOR: &str = "demo";
pub const DEFAULT_SEED: u64 = 42;

/// The demo's files, embedded so that the binary works from any directory.
pub const SYSTEMS_TEMPLATE: &str = include_str!("../../demo/systems.toml");
pub const POLICIES_TEMPLATE: &str = include_str!("../../demo/policies.toml");
pub const PEOPLE_CSV: &str = include_str!("../../demo/people.csv");

/// The reason recorded when the demo approves a plan the mass-change guard held.
const MASS_CHANGE_REASON: &str =
    "demo: the onboarding wave of the seeded company is expected to be this large";

#[derive(Debug, Clone)]
pub struct DemoOptions {
    /// Seeds the situations (storm times and lengths, outages, the leaver, the faults).
    pub seed: u64,
    /// Keep the temporary home (its database and audit log) after the demo ends.
    pub keep_home: bool,
}

impl Default for DemoOptions {
    fn default() -> Self {
        DemoOptions {
            seed: DEFAULT_SEED,
            keep_home: false,
        }
    }
}

/// What the scenario task and the summary share with the demo.
pub(crate) struct Shared {
    pub(crate) store: Arc<Mutex<Store>>,
    pub(crate) config: SystemsConfig,
    pub(crate) policies: PolicySet,
    pub(crate) people: Vec<Person>,
    pub(crate) sims: Vec<(String, Arc<dyn DemoSim>)>,
    pub(crate) timeline: Timeline,
    pub(crate) log: Mutex<ScenarioLog>,
    /// T+0: the wave was applied.
    pub(crate) started: Instant,
}

impl Shared {
    /// Lift every injected permanent failure (the triage fix), audited.
    pub(crate) fn clear_injected_failures(&self) -> usize {
        for (_, sim) in &self.sims {
            sim.clear_injected_failures();
        }
        let n = self.sims.len();
        if let Ok(mut store) = self.store.lock() {
            let _ = store.write(|tx| {
                tx.audit(NewAuditEvent {
                    actor: ACTOR,
                    action: "demo.failures_cleared",
                    subject: "demo",
                    details: json!({"simulators": n}),
                })
            });
        }
        n
    }
}

/// The onboarding wave as applied.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Wave {
    pub plan: String,
    pub operations: usize,
    pub queued: usize,
    pub pending_approval: usize,
    /// Why the mass-change guard held it (the demo approved it as `demo`).
    pub held_reason: Option<String>,
}

/// A running demo. Dropping it stops the simulators, removes the demo credentials from
/// the keychain and (unless `keep_home`) the temporary home; [`Demo::shutdown`] does the
/// same and waits for the simulators to stop.
pub struct Demo {
    /// The temporary home: systems.toml, policies.toml and accessdesk.db.
    pub home: PathBuf,
    pub db_path: PathBuf,
    pub config: SystemsConfig,
    /// The store the engine writes through; admin actions (approve, retry) go through it
    /// too, so that nothing waits on a second writer.
    pub store: Arc<Mutex<Store>>,
    pub engine: Arc<Engine>,
    /// Things the admin should see (the keychain fallback, a held plan, ...).
    pub notices: Vec<String>,
    /// `keyutils`, `secret-service` or `memory`.
    pub keychain_backend: &'static str,
    /// True when no session keyring was usable and the credentials are in memory.
    pub keychain_fallback: bool,
    pub seed: u64,
    pub keep_home: bool,
    pub wave: Wave,
    shared: Arc<Shared>,
    servers: Vec<SimServer>,
    keychain: Keychain,
    credential_names: Vec<String>,
    tempdir: Option<tempfile::TempDir>,
    events: Mutex<Option<mpsc::UnboundedReceiver<EngineEvent>>>,
    /// The HR source (a BambooHR simulator through serve's sources runtime).
    hr: Option<hr::HrSource>,
}

/// Adapters give up on a request after this long (an injected "held" request).
const DEMO_TIMEOUTS: Timeouts = Timeouts {
    connect: Duration::from_secs(2),
    request: Duration::from_secs(4),
};

/// The engine, livelier than in production: short backoffs so retries are visible.
fn engine_config() -> EngineConfig {
    EngineConfig {
        retry_window: Duration::from_secs(600),
        retry_base: Duration::from_millis(250),
        retry_cap: Duration::from_secs(4),
        verify_deadline: Duration::from_secs(30),
        verify_poll: Duration::from_millis(500),
        idle_poll: Duration::from_millis(50),
        actor: ACTOR.into(),
        ..EngineConfig::default()
    }
}

/// The simulators' rate windows: 10 s, at 80% of the system's own budget, so the engine
/// runs into them now and then.
const SIM_WINDOW: Duration = Duration::from_secs(10);

fn window_limit(cfg: &SystemsConfig, system: &str) -> u32 {
    let rpm = cfg
        .catalog
        .systems
        .get(system)
        .and_then(|e| e.rate_limit)
        .map_or(600, |r| r.requests_per_minute);
    ((rpm as f64 / 60.0 * SIM_WINDOW.as_secs_f64()) * 0.8).max(10.0) as u32
}

impl Demo {
    /// Start the simulators, set up the temporary home, keychain and store, import the
    /// company and apply the onboarding wave. The engine and scenario are not started.
    pub async fn start(opts: DemoOptions) -> Result<Demo> {
        let present = sims::present();
        let tempdir = tempfile::Builder::new()
            .prefix("accessdesk-demo-")
            .tempdir()
            .map_err(|e| Error::io("creating the demo's temporary home", e))?;
        let home = Home::new(tempdir.path());
        let mut notices = Vec::new();

        // The simulators, seeded with each system's catalogue.
        let template = SystemsConfig::parse(
            Path::new("demo/systems.toml"),
            &sims::keep_present_systems(SYSTEMS_TEMPLATE, &present, &[])?,
        )?;
        let mut servers = Vec::new();
        let mut running: Vec<(String, Arc<dyn DemoSim>)> = Vec::new();
        let mut credentials = Vec::new();
        let mut urls = Vec::new();
        for (i, spec) in sims::SIMULATORS.iter().enumerate() {
            let entry = template.catalog.systems.get(spec.system).ok_or_else(|| {
                Error::Failed(format!(
                    "demo/systems.toml has no [systems.{}] table for its simulator",
                    spec.system
                ))
            })?;
            let seed = opts.seed.wrapping_mul(31).wrapping_add(i as u64 + 1);
            let spawned = (spec.spawn)(SimSetup {
                entry: entry.clone(),
                faults: scenario::base_faults(seed),
                window: SIM_WINDOW,
                window_limit: window_limit(&template, spec.system),
                seed,
            })
            .await?;
            urls.push((spec.system, spawned.base_url.clone()));
            let name = match &entry.credential {
                Some(crate::config::systems::CredentialRef::Keyring(n)) => n.clone(),
                _ => {
                    return Err(Error::Failed(format!(
                        "demo/systems.toml: [systems.{}] needs credential = \"keyring:NAME\"",
                        spec.system
                    )));
                }
            };
            credentials.push((name, spawned.credential));
            running.push((spec.system.to_string(), Arc::from(spawned.sim)));
            servers.push(spawned.server);
        }

        // The home.
        let systems_text = sims::keep_present_systems(SYSTEMS_TEMPLATE, &present, &urls)?;
        let policies_text = sims::keep_present_grants(POLICIES_TEMPLATE, &present)?;
        for (path, text) in [
            (home.systems_path(), &systems_text),
            (home.policies_path(), &policies_text),
        ] {
            std::fs::write(&path, text)
                .map_err(|e| Error::io(format!("writing {}", path.display()), e))?;
        }
        let config = SystemsConfig::load(&home.systems_path())?;
        let policies = PolicySet::load(&home.policies_path(), &config)?;

        // The credentials.
        // Session-scoped: the session keyring only, never the persistent keyring (nor the
        // Secret Service), so a killed demo leaves nothing a new session can read.
        let (keychain, fell_back) = Keychain::session_or_memory(KEYRING_SERVICE);
        match &fell_back {
            Some(why) => notices.push(format!(
                "No session keyring for the demo ({why}); demo credentials are kept in memory only"
            )),
            None if keychain.backend() == BackendKind::Memory => notices.push(
                "ACCESSDESK_KEYCHAIN=memory: demo credentials are kept in memory only".into(),
            ),
            None => {}
        }
        let mut credential_names = Vec::new();
        for (name, secret) in &credentials {
            keychain.set(name, secret)?;
            credential_names.push(name.clone());
        }

        // The store, the company and the wave.
        let mut store = Store::open(&home.db_path())?;
        store.write(|tx| {
            tx.audit(NewAuditEvent {
                actor: ACTOR,
                action: "demo.started",
                subject: "demo",
                details: json!({
                    "seed": opts.seed,
                    "systems": present,
                    "keychain": keychain.backend_name(),
                    "keychain_service": keychain.service(),
                    "keychain_fallback": fell_back.as_ref().map(|e| e.to_string()),
                }),
            })?;
            for name in &credential_names {
                tx.record_secret_set(name, keychain.backend_name(), ACTOR)?;
            }
            tx.sync_catalog(&config.catalog, ACTOR)?;
            Ok(())
        })?;
        let people = crate::import::parse_people_csv(
            Path::new("demo/people.csv"),
            PEOPLE_CSV.as_bytes(),
            &config.import,
        )?;
        crate::import::import_people_guarded(
            &mut store,
            &people,
            Some(&policies),
            ACTOR,
            false,
            &config.guard,
            &crate::import::Approvals::default(),
        )?;
        let (wave, held) = apply_wave(&mut store, &config)?;
        if let Some(reason) = &held {
            notices.push(format!(
                "The onboarding wave was held by the mass-change guard ({reason}); the demo approved it as `{ACTOR}`: {MASS_CHANGE_REASON}"
            ));
        }

        // The engine.
        let store = Arc::new(Mutex::new(store));
        let (engine, problems) = Engine::from_config(
            &config,
            store.clone(),
            &keychain,
            DEMO_TIMEOUTS,
            engine_config(),
        );
        if !problems.is_empty() {
            return Err(Error::Failed(format!(
                "the demo could not build its adapters: {}",
                problems
                    .iter()
                    .map(|p| p.to_string())
                    .collect::<Vec<_>>()
                    .join("; ")
            )));
        }
        let (tx, rx) = mpsc::unbounded_channel();
        let engine = Arc::new(engine.with_events(tx));

        let timeline = Timeline::new(opts.seed, &present, &people, |p| {
            policies
                .evaluate(p, chrono::Utc::now())
                .into_iter()
                .map(|g| (g.entitlement.to_string(), g.requires_approval))
                .collect()
        });
        let avoid: Vec<&str> = timeline
            .leaver
            .as_ref()
            .map(|l| l.person.as_str())
            .into_iter()
            .collect();
        let hr = hr::start(&home, &keychain, engine.clone(), &config, &people, &avoid).await?;
        credential_names.push(hr::API_KEY_NAME.to_string());
        credential_names.push(hr::WEBHOOK_KEY_NAME.to_string());
        credential_names.push(hr::WORKDAY_CLIENT_NAME.to_string());
        notices.push(format!(
            "HR sources: BambooHR (simulated) is polled every 5 s and pushes signed webhooks to http://{}/webhooks/bamboo; Workday (simulated, contractors) is read whole every 5 s",
            hr.running.addr
        ));
        let shared = Arc::new(Shared {
            store: store.clone(),
            config: config.clone(),
            policies,
            people,
            sims: running,
            timeline,
            log: Mutex::new(ScenarioLog::default()),
            started: Instant::now(),
        });
        scenario::break_triage_target(&shared);

        let home_dir = tempdir.path().to_path_buf();
        let tempdir = if opts.keep_home {
            let _kept = tempdir.keep();
            None
        } else {
            Some(tempdir)
        };
        Ok(Demo {
            db_path: home.db_path(),
            home: home_dir,
            config,
            store,
            engine,
            notices,
            keychain_backend: keychain.backend_name(),
            keychain_fallback: fell_back.is_some(),
            seed: opts.seed,
            keep_home: opts.keep_home,
            wave: Wave {
                held_reason: held,
                ..wave
            },
            shared,
            servers,
            keychain,
            credential_names,
            tempdir,
            events: Mutex::new(Some(rx)),
            hr: Some(hr),
        })
    }

    /// Run the engine until `stop` turns true. It does not stop when the queue is idle:
    /// approvals, retries and the leaver's plan bring new work.
    pub fn spawn_engine(&self, stop: watch::Receiver<bool>) -> JoinHandle<Result<RunSummary>> {
        let engine = self.engine.clone();
        tokio::spawn(async move { engine.run_until_stopped(stop).await })
    }

    /// Run the seeded situations (storms, the flaky minute, the leaver) until they are all
    /// done or `stop` turns true.
    pub fn spawn_scenario(&self, stop: watch::Receiver<bool>) -> JoinHandle<Result<()>> {
        if let Some(h) = &self.hr {
            tokio::spawn(hr::story(
                self.shared.clone(),
                h.handle.clone(),
                h.mover.clone(),
                h.leaver.clone(),
                stop.clone(),
            ));
            tokio::spawn(hr::contractor_story(
                self.shared.clone(),
                h.workday.clone(),
                stop.clone(),
            ));
        }
        tokio::spawn(scenario::run(self.shared.clone(), stop))
    }

    /// The engine's progress events (once; later calls get None). Events are buffered
    /// from the start, so nothing is missed by taking them late.
    pub fn take_events(&self) -> Option<mpsc::UnboundedReceiver<EngineEvent>> {
        self.events.lock().unwrap_or_else(|p| p.into_inner()).take()
    }

    /// Time since the wave was applied (the scenario's clock).
    pub fn elapsed(&self) -> Duration {
        self.shared.started.elapsed()
    }

    /// What the scenario will do, and when.
    pub fn timeline(&self) -> &Timeline {
        &self.shared.timeline
    }

    /// What the scenario has done so far.
    pub fn scenario_log(&self) -> ScenarioLog {
        self.shared
            .log
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The scenario's events since the `n`th (for a live feed).
    /// The scenario's events as text, for the console's event feed (`T+12s what`).
    pub fn event_feed(&self) -> crate::tui::core::EventFeed {
        let shared = self.shared.clone();
        Arc::new(move |n: usize| {
            let log = shared.log.lock().unwrap_or_else(|p| p.into_inner());
            log.events
                .iter()
                .skip(n)
                .map(|e| format!("T+{:.0}s {}", e.at_secs, e.what))
                .collect()
        })
    }

    pub fn scenario_events_since(&self, n: usize) -> Vec<ScenarioEvent> {
        let log = self.shared.log.lock().unwrap_or_else(|p| p.into_inner());
        log.events.iter().skip(n).cloned().collect()
    }

    /// Fix what the triage situation broke (the gateway refusing payroll group changes):
    /// a retry of the failed operations then succeeds. Returns how many simulators had
    /// injected failures cleared.
    pub fn clear_injected_failures(&self) -> usize {
        self.shared.clear_injected_failures()
    }

    /// Everything the run amounts to so far.
    pub async fn summary(&self) -> Result<DemoSummary> {
        summary::collect(self)
    }

    /// The keychain holding the demo's credentials (the console asks it whether each
    /// credential is present; it never reads a value).
    pub fn keychain(&self) -> &Keychain {
        &self.keychain
    }

    /// Stop the simulators and clean up (keychain entries; the home unless `keep_home`).
    pub async fn shutdown(mut self) {
        if let Some(h) = self.hr.take() {
            let _ = h.running.stop().await;
            h.server.stop().await;
        }
        for s in std::mem::take(&mut self.servers) {
            s.stop().await;
        }
        self.cleanup();
    }

    fn cleanup(&mut self) {
        for name in std::mem::take(&mut self.credential_names) {
            if let Err(e) = self.keychain.remove(&name) {
                tracing::warn!(error = %e, "removing a demo credential from the keychain");
            }
        }
        if let Some(dir) = self.tempdir.take()
            && let Err(e) = dir.close()
        {
            tracing::warn!(error = %e, "removing the demo's temporary home");
        }
    }
}

impl Drop for Demo {
    fn drop(&mut self) {
        self.cleanup();
    }
}

/// Plan and apply the onboarding wave, approving it if the mass-change guard held it.
fn apply_wave(store: &mut Store, config: &SystemsConfig) -> Result<(Wave, Option<String>)> {
    let plan = make_plan(
        store,
        &config.catalog,
        &config.guard,
        &Scope::default(),
        ACTOR,
    )?;
    let approval = plan.held_reason.as_ref().map(|_| MASS_CHANGE_REASON);
    let ApplyReport {
        queued,
        pending_approval,
        ..
    } = apply_plan(store, &config.catalog, &plan.id, ACTOR, approval)?;
    Ok((
        Wave {
            plan: plan.id.clone(),
            operations: plan.ops.len(),
            queued,
            pending_approval,
            held_reason: None,
        },
        plan.held_reason,
    ))
}

/// A `--for` duration (`30s`, `2m`, `1h`, `1m30s`, `500ms`; [`crate::text::parse_duration`]),
/// at most 24 hours.
pub fn parse_duration(s: &str) -> std::result::Result<Duration, String> {
    let total = crate::text::parse_duration(s)?;
    if total > Duration::from_secs(24 * 3600) {
        return Err(format!("{s:?} is longer than the demo runs: at most 24h"));
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse() {
        for (text, secs) in [
            ("30s", 30.0),
            ("2m", 120.0),
            ("1h", 3600.0),
            ("1m30s", 90.0),
            (" 45s ", 45.0),
            ("500ms", 0.5),
        ] {
            assert_eq!(parse_duration(text).unwrap().as_secs_f64(), secs, "{text}");
        }
    }

    #[test]
    fn bad_durations_say_what_is_wanted() {
        for text in ["", "30", "abc", "30x", "s30", "1.5m", "-5s", "3 0s"] {
            let e = parse_duration(text).unwrap_err();
            assert!(
                e.contains(
                    "is not a duration: write a number followed by s, m or h, e.g. 30s or 2m"
                ),
                "{text}: {e}"
            );
        }
        assert!(parse_duration("0s").unwrap_err().contains("no time at all"));
        assert!(parse_duration("25h").unwrap_err().contains("at most 24h"));
    }

    #[test]
    fn the_embedded_company_loads() {
        let people = crate::import::parse_people_csv(
            Path::new("demo/people.csv"),
            PEOPLE_CSV.as_bytes(),
            &crate::config::ImportMapping::default(),
        )
        .unwrap();
        assert_eq!(people.len(), 500);
        let ids: std::collections::HashSet<&str> =
            people.iter().map(|p| p.hris_id.as_str()).collect();
        assert!(
            people
                .iter()
                .filter_map(|p| p.manager_id.as_deref())
                .all(|m| ids.contains(m)),
            "every manager is in the file"
        );
        assert_eq!(people.iter().filter(|p| p.manager_id.is_none()).count(), 1);
        let pending = people
            .iter()
            .filter(|p| p.status == crate::model::EmploymentStatus::Pending)
            .count();
        assert!((3..=12).contains(&pending), "{pending}");
        assert!(people.iter().any(|p| !p.given_name.is_ascii()));
    }
}
