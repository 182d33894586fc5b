//! The demo's seeded situations, timed from the start of the wave.
//!
//! [`Timeline::new`] works out, from the seed alone, what happens when:
//!
//! - **Transient errors** on every system, all the time: about 3% of requests get a 5xx, a
//!   dropped connection or a held request that times out ([`base_faults`]); a few writes
//!   are carried out but their answer is lost.
//! - **429 storms**: at about T+3 s, T+22 s, T+41 s, T+63 s and T+85 s one system refuses
//!   every request with its vendor's rate-limit answer for 4.5-6 s, long enough that the
//!   operations in flight exhaust their HTTP retries and go to `retry_wait` as
//!   `rate_limited`. Small random bursts and the simulators' own rate windows add more 429s.
//! - **A flaky system** from T+8 s to T+68 s: outages of 5-6.5 s (every request answered 503)
//!   separated by 7-11 s of elevated errors. The first outage starts at T+8 s.
//! - **Approvals**: privileged grants from the policies wait in `pending_approval`; they are
//!   left for the admin.
//! - **Triage**: a gateway in front of Okta refuses every change to the payroll group's
//!   membership (HTTP 400 with an HTML page) from the start, so the payroll team's
//!   memberships fail as one root cause. [`super::Demo::clear_injected_failures`] fixes the
//!   gateway; retrying the group then succeeds.
//! - **A leaver** at T+12 s: HR's feed marks one early, already provisioned person as
//!   terminated; the demo imports it, plans and applies for that person, and the
//!   deactivation jumps the queue. How long it took is recorded.

use super::Shared;
use super::sims::DemoSim;
use crate::engine::apply::{apply_plan, make_plan};
use crate::engine::plan::Scope;
use crate::import::import_people_guarded;
use crate::model::{EmploymentStatus, EntitlementKind, Person};
use crate::sim::fault::FaultProfile;
use crate::{Error, Result};
use rand::{Rng, SeedableRng};
use serde::Serialize;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// When the flaky minute starts and how long it lasts.
pub const FLAKY_FROM: Duration = Duration::from_secs(8);
pub const FLAKY_FOR: Duration = Duration::from_secs(60);
/// When HR's feed brings the leaver.
pub const LEAVER_AT: Duration = Duration::from_secs(12);
/// Which system is flaky: the first of these the demo runs.
const FLAKY_PREFERENCE: &[&str] = &["zoom", "aws-sso", "aws", "okta"];
/// Where the triage failures are injected: (system, kind, entitlement).
pub const TRIAGE: (&str, EntitlementKind, &str) =
    ("okta", EntitlementKind::Group, "payroll-processing");
/// The leaver is one of this many earliest eligible hires (provisioned in the first
/// seconds of the wave, before the first storm).
const LEAVER_POOL: usize = 12;
/// The audit actor for what the scenario does (HR's feed, the plans it applies).
pub const HR_FEED_ACTOR: &str = "demo:hr-feed";

/// About 3% of requests fail transiently: 5xx, dropped connections, held requests that
/// time out (the demo's adapters give up after 4 s). Some answers are slow; rarely a small
/// burst of 429s starts.
pub fn base_faults(seed: u64) -> FaultProfile {
    FaultProfile {
        burst_429_rate: 0.004,
        burst_429_len: 4,
        burst_retry_after_secs: 1,
        error_5xx_rate: 0.018,
        timeout_rate: 0.004,
        timeout_delay: Duration::from_secs(6),
        reset_rate: 0.008,
        slow_rate: 0.02,
        slow_delay: Duration::from_millis(400),
        latency: Some((Duration::from_millis(5), Duration::from_millis(40))),
        seed,
        ..FaultProfile::none()
    }
}

/// A scheduled 429 storm: every request to `system` is refused from `at_secs` to
/// `until_secs`.
#[derive(Debug, Clone, Serialize)]
pub struct Storm {
    pub at_secs: f64,
    pub until_secs: f64,
    pub system: String,
}

/// The flaky system's minute.
#[derive(Debug, Clone, Serialize)]
pub struct Flaky {
    pub system: String,
    pub from_secs: f64,
    pub until_secs: f64,
    /// Outages within the window: (from, until), seconds since the start.
    pub outages: Vec<(f64, f64)>,
    /// Share of requests answered 5xx between outages.
    pub error_rate: f64,
}

/// Who leaves, and when.
#[derive(Debug, Clone, Serialize)]
pub struct LeaverPlan {
    pub person: String,
    pub name: String,
    pub at_secs: f64,
}

/// The injected permanent failures.
#[derive(Debug, Clone, Serialize)]
pub struct TriagePlan {
    pub system: String,
    pub entitlement: String,
    /// The people whose membership will fail.
    pub people: Vec<String>,
}

/// Everything the scenario will do, worked out from the seed.
#[derive(Debug, Clone, Serialize)]
pub struct Timeline {
    pub seed: u64,
    pub storms: Vec<Storm>,
    pub flaky: Flaky,
    pub leaver: Option<LeaverPlan>,
    pub triage: Option<TriagePlan>,
}

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

impl Timeline {
    /// `systems`: the systems running; `people` and `grants_of` (a person's intended grants:
    /// entitlement and whether it needs approval) pick the leaver and the triage group.
    pub fn new(
        seed: u64,
        systems: &[&str],
        people: &[Person],
        grants_of: impl Fn(&Person) -> Vec<(String, bool)>,
    ) -> Timeline {
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed ^ 0xdeb0);
        let storms = [3.0, 22.0, 41.0, 63.0, 85.0]
            .iter()
            .enumerate()
            .map(|(i, base)| {
                let at_secs = base + rng.random_range(0.0..1.5);
                Storm {
                    at_secs,
                    until_secs: at_secs + rng.random_range(4.5..6.0),
                    system: systems[i % systems.len().max(1)].to_string(),
                }
            })
            .collect();
        let flaky_system = FLAKY_PREFERENCE
            .iter()
            .find(|s| systems.contains(s))
            .or(systems.first())
            .copied()
            .unwrap_or("okta");
        let (from, until) = (secs(FLAKY_FROM), secs(FLAKY_FROM + FLAKY_FOR));
        let mut outages = Vec::new();
        let mut t = from;
        while t < until {
            let end = (t + rng.random_range(5.0..6.5)).min(until);
            outages.push((t, end));
            t = end + rng.random_range(7.0..11.0);
        }
        let triage_entitlement = format!("{}:{}:{}", TRIAGE.0, TRIAGE.1, TRIAGE.2);
        let mut triage_people = Vec::new();
        let mut leaver_pool = Vec::new();
        for p in people {
            let grants = grants_of(p);
            if grants.iter().any(|(e, _)| *e == triage_entitlement) {
                triage_people.push(p.hris_id.clone());
            } else if p.status == EmploymentStatus::Active
                && p.department != "Executive"
                && !grants.is_empty()
                && grants.iter().all(|(_, approval)| !approval)
                && leaver_pool.len() < LEAVER_POOL
            {
                leaver_pool.push(p);
            }
        }
        let leaver = (!leaver_pool.is_empty()).then(|| {
            let p = leaver_pool[rng.random_range(0..leaver_pool.len())];
            LeaverPlan {
                person: p.hris_id.clone(),
                name: crate::model::names::shape(p, crate::model::SystemKind::Okta).display,
                at_secs: secs(LEAVER_AT),
            }
        });
        let triage =
            (systems.contains(&TRIAGE.0) && !triage_people.is_empty()).then(|| TriagePlan {
                system: TRIAGE.0.to_string(),
                entitlement: triage_entitlement,
                people: triage_people,
            });
        Timeline {
            seed,
            storms,
            flaky: Flaky {
                system: flaky_system.to_string(),
                from_secs: from,
                until_secs: until,
                outages,
                error_rate: 0.15,
            },
            leaver,
            triage,
        }
    }

    /// The timed steps, in order.
    fn steps(&self) -> Vec<(f64, Step)> {
        let mut steps: Vec<(f64, Step)> = Vec::new();
        for s in &self.storms {
            steps.push((s.at_secs, Step::Storm(s.system.clone(), true)));
            steps.push((s.until_secs, Step::Storm(s.system.clone(), false)));
        }
        steps.push((self.flaky.from_secs, Step::FlakyBegins));
        for (from, until) in &self.flaky.outages {
            steps.push((*from, Step::Outage(true)));
            steps.push((*until, Step::Outage(false)));
        }
        steps.push((self.flaky.until_secs, Step::FlakyEnds));
        if let Some(l) = &self.leaver {
            steps.push((l.at_secs, Step::Leaver));
        }
        if self.triage.is_some() {
            steps.push((TRIAGE_FIXED_SECS, Step::TriageFixed));
        }
        steps.push((DRIFT_AT_SECS, Step::Drift));
        // Stable: at equal times the order above holds (the flaky window opens before its
        // first outage).
        steps.sort_by(|a, b| a.0.total_cmp(&b.0));
        steps
    }
}

#[derive(Debug, Clone)]
enum Step {
    /// A system's 429 storm starts (true) or ends.
    Storm(String, bool),
    FlakyBegins,
    Outage(bool),
    FlakyEnds,
    Leaver,
    /// Whatever broke the triage group is fixed: a retry of the group now succeeds.
    TriageFixed,
    /// People change the targets behind accessdesk's back (for reconciliation to find).
    Drift,
}

/// When the targets drift behind accessdesk's back (after most of the wave is done).
pub const DRIFT_AT_SECS: f64 = 50.0;

/// When the cause of the triage group is fixed (the admin then retries the group).
pub const TRIAGE_FIXED_SECS: f64 = 40.0;

/// One thing the scenario did.
#[derive(Debug, Clone, Serialize)]
pub struct ScenarioEvent {
    pub at_secs: f64,
    pub what: String,
}

/// What became of the leaver.
#[derive(Debug, Clone, Serialize)]
pub struct LeaverOutcome {
    pub person: String,
    pub name: String,
    /// When HR's feed was imported, seconds since the start.
    pub terminated_at_secs: f64,
    pub plan: Option<String>,
    pub operations: Vec<i64>,
    /// Operations queued ahead of the deactivation when it was enqueued (it went first).
    pub jumped_ahead_of: i64,
    /// `pending`, `succeeded`, `failed`, or `no account` when there was nothing to deactivate.
    pub status: String,
    /// From HR's feed arriving (import, plan, apply) to every deactivation succeeding.
    pub deactivated_after_ms: Option<u64>,
}

/// What the scenario has done so far.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ScenarioLog {
    pub events: Vec<ScenarioEvent>,
    pub storms: usize,
    pub flaky_began_secs: Option<f64>,
    pub flaky_ended_secs: Option<f64>,
    pub outages_begun: usize,
    pub leaver: Option<LeaverOutcome>,
}

impl Shared {
    fn now_secs(&self) -> f64 {
        self.started.elapsed().as_secs_f64()
    }

    fn log(&self, f: impl FnOnce(&mut ScenarioLog, f64) -> Option<String>) {
        let at = self.now_secs();
        let mut log = self.log.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(what) = f(&mut log, at) {
            tracing::info!(at = format!("T+{at:.1}s"), "demo: {what}");
            log.events.push(ScenarioEvent { at_secs: at, what });
        }
    }

    /// Put a line in the scenario's log (and the console's status bar).
    pub(super) fn say(&self, what: &str) {
        self.log(|_, _| Some(what.to_string()));
    }

    fn sim(&self, system: &str) -> Option<&Arc<dyn DemoSim>> {
        self.sims.iter().find(|(n, _)| n == system).map(|(_, s)| s)
    }
}

/// [`until`] for the demo's other stories.
pub(super) async fn until_secs(shared: &Shared, at: f64, stop: &mut watch::Receiver<bool>) -> bool {
    until(shared, at, stop).await
}

/// Sleep until `at` seconds after the start; false if `stop` turned true first.
async fn until(shared: &Shared, at: f64, stop: &mut watch::Receiver<bool>) -> bool {
    let deadline = shared.started + Duration::from_secs_f64(at.max(0.0));
    loop {
        if *stop.borrow() {
            return false;
        }
        tokio::select! {
            _ = tokio::time::sleep_until(deadline.into()) => return !*stop.borrow(),
            changed = stop.changed() => if changed.is_err() { return false },
        }
    }
}

/// Put the injected triage failures in place (before the wave reaches them).
pub(super) fn break_triage_target(shared: &Shared) {
    let Some(t) = &shared.timeline.triage else {
        return;
    };
    if let Some(sim) = shared.sim(&t.system)
        && sim.break_entitlement(TRIAGE.1, TRIAGE.2)
    {
        shared.log(|_, _| {
            Some(format!(
                "a gateway in front of {} now refuses changes to {} ({} people will need triage)",
                t.system,
                t.entitlement,
                t.people.len()
            ))
        });
    }
}

/// Run the timeline until it is done or `stop` turns true.
pub(super) async fn run(shared: Arc<Shared>, mut stop: watch::Receiver<bool>) -> Result<()> {
    let flaky = shared.timeline.flaky.clone();
    for (at, step) in shared.timeline.steps() {
        if !until(&shared, at, &mut stop).await {
            break;
        }
        match step {
            Step::Storm(system, starts) => {
                if let Some(sim) = shared.sim(&system) {
                    sim.faults()
                        .throttle_next(if starts { u32::MAX } else { 0 });
                    shared.log(|l, _| {
                        l.storms += usize::from(starts);
                        Some(if starts {
                            format!("429 storm: {system} refuses every request")
                        } else {
                            format!("the 429 storm on {system} is over")
                        })
                    });
                }
            }
            Step::FlakyBegins => {
                if let Some(sim) = shared.sim(&flaky.system) {
                    let f = sim.faults();
                    let mut p = f.profile();
                    p.error_5xx_rate += flaky.error_rate;
                    f.set_profile(p);
                    shared.log(|l, at| {
                        l.flaky_began_secs = Some(at);
                        Some(format!(
                            "{} turns flaky for {:.0} s: outages and {:.0}% errors",
                            flaky.system,
                            flaky.until_secs - flaky.from_secs,
                            flaky.error_rate * 100.0
                        ))
                    });
                }
            }
            Step::Outage(down) => {
                if let Some(sim) = shared.sim(&flaky.system) {
                    sim.faults().set_down(down);
                    shared.log(|l, _| {
                        if down {
                            l.outages_begun += 1;
                        }
                        Some(format!(
                            "{} {}",
                            flaky.system,
                            if down {
                                "is down: every request gets a 503"
                            } else {
                                "is back up (still flaky)"
                            }
                        ))
                    });
                }
            }
            Step::FlakyEnds => {
                if let Some(sim) = shared.sim(&flaky.system) {
                    let f = sim.faults();
                    f.set_down(false);
                    let mut p = f.profile();
                    p.error_5xx_rate = (p.error_5xx_rate - flaky.error_rate).max(0.0);
                    f.set_profile(p);
                    shared.log(|l, at| {
                        l.flaky_ended_secs = Some(at);
                        Some(format!("{} is stable again", flaky.system))
                    });
                }
            }
            Step::TriageFixed => {
                shared.clear_injected_failures();
                shared.log(|_, _| {
                    Some("the gateway in front of the payroll group is fixed: retry the failure group (Queue, g, r)".into())
                });
            }
            Step::Drift => {
                let leaver = shared
                    .people
                    .iter()
                    .find(|p| p.status == EmploymentStatus::Terminated);
                let mut any = false;
                for (name, sim) in &shared.sims {
                    let Some(entry) = shared.config.catalog.systems.get(name) else {
                        continue;
                    };
                    for what in sim.seed_drift(entry, leaver) {
                        any = true;
                        shared.log(|_, _| Some(what));
                    }
                }
                if any {
                    shared.log(|_, _| {
                        Some("the targets drifted behind accessdesk's back: run a reconciliation (`accessdesk reconcile`, or the console's Reconcile view) to find it".into())
                    });
                }
            }
            Step::Leaver => {
                // Followed in its own task, so the timeline goes on meanwhile.
                let shared = shared.clone();
                let stop = stop.clone();
                tokio::spawn(async move {
                    if let Err(e) = leaver(&shared, stop).await {
                        shared.log(|_, _| Some(format!("the leaver could not be processed: {e}")));
                    }
                });
            }
        }
    }
    Ok(())
}

/// HR's feed terminates the leaver; import, plan and apply for them; follow the deactivation.
async fn leaver(shared: &Shared, mut stop: watch::Receiver<bool>) -> Result<()> {
    let Some(plan) = shared.timeline.leaver.clone() else {
        return Ok(());
    };
    // The story needs an account to deactivate: give the wave up to 30 s more to create it.
    let waited_from = Instant::now();
    while !provisioned(shared, &plan.person)? && waited_from.elapsed() < Duration::from_secs(30) {
        if !until(shared, shared.now_secs() + 0.2, &mut stop).await {
            return Ok(());
        }
    }
    // The HR feed's change: this one person (the rest of the company is the other
    // stories' to change, the HR source's among them).
    let people: Vec<Person> = shared
        .people
        .iter()
        .filter(|p| p.hris_id == plan.person)
        .map(|p| {
            let mut p = p.clone();
            p.status = EmploymentStatus::Terminated;
            p.end_date = Some(chrono::Utc::now().date_naive());
            p
        })
        .collect();
    let terminated_at = shared.now_secs();
    let feed_arrived = Instant::now();
    let (plan_id, ops, ahead) = {
        let mut store = shared.store.lock().unwrap_or_else(|p| p.into_inner());
        import_people_guarded(
            &mut store,
            &people,
            Some(&shared.policies),
            HR_FEED_ACTOR,
            false,
            &shared.config.guard,
            &crate::import::Approvals::default(),
        )?;
        let scope = Scope {
            system: None,
            person: Some(plan.person.clone()),
        };
        let p = make_plan(
            &mut store,
            &shared.config.catalog,
            &shared.config.guard,
            &scope,
            HR_FEED_ACTOR,
        )?;
        let ahead: i64 = store.conn().query_row(
            "SELECT count(*) FROM operations WHERE status IN ('queued', 'retry_wait')",
            [],
            |r| r.get(0),
        )?;
        let approval = p
            .held_reason
            .as_ref()
            .map(|_| "demo: the leaver's deactivation is expected");
        apply_plan(
            &mut store,
            &shared.config.catalog,
            &p.id,
            HR_FEED_ACTOR,
            approval,
        )?;
        let mut stmt = store.conn().prepare(
            "SELECT id FROM operations WHERE plan_id = ?1 AND kind = 'deactivate' ORDER BY id",
        )?;
        let ops = stmt
            .query_map([&p.id], |r| r.get::<_, i64>(0))?
            .collect::<rusqlite::Result<Vec<i64>>>()?;
        (p.id, ops, ahead)
    };
    let outcome = LeaverOutcome {
        person: plan.person.clone(),
        name: plan.name.clone(),
        terminated_at_secs: terminated_at,
        plan: Some(plan_id),
        operations: ops.clone(),
        jumped_ahead_of: ahead,
        status: if ops.is_empty() {
            "no account"
        } else {
            "pending"
        }
        .into(),
        deactivated_after_ms: None,
    };
    shared.log(|l, _| {
        l.leaver = Some(outcome.clone());
        Some(format!(
            "HR: {} ({}) has left; {} deactivation(s) queued ahead of {ahead} waiting operations",
            plan.name,
            plan.person,
            ops.len()
        ))
    });
    if ops.is_empty() {
        return Ok(());
    }
    loop {
        let statuses: Vec<String> = {
            let store = shared.store.lock().unwrap_or_else(|p| p.into_inner());
            ops.iter()
                .map(|id| {
                    store
                        .op(*id)
                        .map(|o| o.map(|o| o.status.as_str().to_string()).unwrap_or_default())
                })
                .collect::<Result<_>>()?
        };
        let done = statuses.iter().all(|s| s == "succeeded");
        let failed = statuses
            .iter()
            .any(|s| matches!(s.as_str(), "failed" | "cancelled"));
        if done || failed {
            let ms = feed_arrived.elapsed().as_millis() as u64;
            shared.log(|l, _| {
                let o = l.leaver.as_mut()?;
                o.status = if done { "succeeded" } else { "failed" }.into();
                o.deactivated_after_ms = done.then_some(ms);
                Some(if done {
                    format!(
                        "{} deactivated {:.2} s after HR's feed arrived",
                        plan.person,
                        ms as f64 / 1000.0
                    )
                } else {
                    format!("{}'s deactivation failed", plan.person)
                })
            });
            return Ok(());
        }
        if !until(shared, shared.now_secs() + 0.05, &mut stop).await {
            return Ok(());
        }
    }
}

/// Has every account the person is due been created?
fn provisioned(shared: &Shared, person: &str) -> Result<bool> {
    let store = shared.store.lock().unwrap_or_else(|p| p.into_inner());
    let (all, done): (i64, i64) = store
        .conn()
        .query_row(
            "SELECT count(*), coalesce(sum(status = 'succeeded'), 0) FROM operations WHERE person_id = ?1 AND kind = 'create_account'",
            [person],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .map_err(Error::from)?;
    Ok(all > 0 && all == done)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn people() -> Vec<Person> {
        (1..=60)
            .map(|i| {
                let mut p = Person::new(
                    &format!("E{i:04}"),
                    "Given",
                    "Family",
                    &format!("p{i}@example.com"),
                );
                p.title = if i % 20 == 3 {
                    "Payroll Specialist".into()
                } else {
                    "Engineer".into()
                };
                p
            })
            .collect()
    }

    fn grants(p: &Person) -> Vec<(String, bool)> {
        if p.title == "Payroll Specialist" {
            vec![("okta:group:payroll-processing".into(), false)]
        } else {
            vec![("okta:group:all-staff".into(), p.hris_id.ends_with('2'))]
        }
    }

    #[test]
    fn the_timeline_is_a_function_of_the_seed() {
        let a = Timeline::new(7, &["okta"], &people(), grants);
        let b = Timeline::new(7, &["okta"], &people(), grants);
        let c = Timeline::new(8, &["okta"], &people(), grants);
        let text = |t: &Timeline| serde_json::to_string(t).unwrap();
        assert_eq!(text(&a), text(&b));
        assert_ne!(text(&a), text(&c));

        assert_eq!(a.flaky.system, "okta");
        assert_eq!(
            a.flaky.outages[0].0, 8.0,
            "the first outage opens the window"
        );
        assert!(a.flaky.outages.iter().all(|(f, u)| f < u && *u <= 68.0));
        assert_eq!(a.storms.len(), 5);
        assert!(a.storms[0].at_secs < 5.0);
        let triage = a.triage.unwrap();
        assert_eq!(triage.people, vec!["E0003", "E0023", "E0043"]);
        let leaver = a.leaver.unwrap();
        assert!(
            !leaver.person.ends_with('2'),
            "no one with a pending approval"
        );
        assert!(!triage.people.contains(&leaver.person));
    }

    #[test]
    fn a_later_system_takes_the_flaky_minute() {
        let t = Timeline::new(7, &["okta", "zoom"], &people(), grants);
        assert_eq!(t.flaky.system, "zoom");
        assert!(t.storms.iter().any(|s| s.system == "zoom"));
    }
}
