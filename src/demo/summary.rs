//! What a demo run amounts to: operations, retries and their causes, what the simulators
//! answered, the situations, and the invariants (no account created twice, an intact
//! audit chain).

use super::Demo;
use super::scenario::{LeaverOutcome, ScenarioEvent};
use super::sims::Served;
use crate::Result;
use crate::engine::admin;
use crate::engine::workers::RunSummary;
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Write as _;

#[derive(Debug, Clone, Serialize)]
pub struct KeychainInfo {
    pub backend: String,
    pub service: String,
    /// No session keyring was usable (or the Secret Service was asked for, which the
    /// demo never uses): the credentials were kept in memory.
    pub fallback: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct SystemSummary {
    pub name: String,
    pub kind: String,
    pub served: Served,
    pub duplicate_creates: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Operations {
    pub total: i64,
    pub by_status: BTreeMap<String, i64>,
}

/// Retries the engine scheduled (after an adapter's own HTTP retries gave up), by cause.
#[derive(Debug, Clone, Serialize)]
pub struct RetryCause {
    pub class: String,
    pub http_status: Option<u16>,
    pub code: Option<String>,
    pub count: i64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Retries {
    pub total: i64,
    pub rate_limited: i64,
    pub transient: i64,
    pub by_cause: Vec<RetryCause>,
}

#[derive(Debug, Clone, Serialize)]
pub struct FlakySummary {
    pub system: String,
    pub from_secs: f64,
    pub until_secs: f64,
    pub began: bool,
    pub began_at_secs: Option<f64>,
    pub outages_begun: usize,
    pub ended: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct FailureGroup {
    /// The key `accessdesk queue retry --group` takes.
    pub key: String,
    pub system: String,
    pub class: String,
    pub cause: String,
    pub count: usize,
    pub people: Vec<String>,
    pub message: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct AuditSummary {
    pub events: i64,
    pub verified: bool,
    pub problem: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct DemoSummary {
    pub seed: u64,
    pub elapsed_secs: f64,
    pub home: String,
    pub home_kept: bool,
    pub keychain: KeychainInfo,
    pub notices: Vec<String>,
    pub wave: super::Wave,
    pub operations: Operations,
    pub retries: Retries,
    /// 429s (and throttling answers) the simulators served.
    pub throttled: u64,
    pub systems: Vec<SystemSummary>,
    pub storms: usize,
    pub flaky: FlakySummary,
    pub pending_approvals: usize,
    pub pending_approvals_by_entitlement: BTreeMap<String, usize>,
    pub failure_groups: Vec<FailureGroup>,
    pub leaver: Option<LeaverOutcome>,
    /// The HR source (BambooHR by webhook and poll): its counters (`received`, `polls`,
    /// `changes:joiner`, `rejected:REASON`, `failed`, ...).
    pub hr_source: BTreeMap<String, i64>,
    /// The Workday source's counters (contractors).
    pub workday_source: BTreeMap<String, i64>,
    pub duplicate_creates: u64,
    pub audit: AuditSummary,
    /// The engine's own count, when it has stopped.
    pub engine: Option<RunSummary>,
    pub scenario: Vec<ScenarioEvent>,
    /// The reconciliation session after the targets drifted (headless runs that reached
    /// the drift): found by class, enforced, and what was left.
    pub reconcile: Option<super::reconcile::ReconcileStory>,
    /// No account created twice and the audit chain intact.
    pub invariants_hold: bool,
}

/// Operations by status, most first.
pub fn ops_by_status(store: &crate::store::Store) -> Result<Vec<(String, i64)>> {
    let mut stmt = store.conn().prepare(
        "SELECT status, count(*) FROM operations GROUP BY status ORDER BY count(*) DESC, status",
    )?;
    let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

pub(super) fn collect(demo: &Demo) -> Result<DemoSummary> {
    let shared = &demo.shared;
    let log = demo.scenario_log();
    let systems: Vec<SystemSummary> = shared
        .sims
        .iter()
        .map(|(name, sim)| SystemSummary {
            name: name.clone(),
            kind: demo
                .config
                .catalog
                .systems
                .get(name)
                .map(|e| e.system.kind.to_string())
                .unwrap_or_default(),
            served: sim.served(),
            duplicate_creates: sim.duplicate_creates(),
        })
        .collect();
    let store = demo.store.lock().unwrap_or_else(|p| p.into_inner());
    let stats = store.source_stats()?;
    let source_stats = |name: &str| -> BTreeMap<String, i64> {
        stats
            .iter()
            .filter(|s| s.source == name)
            .map(|s| (s.name.clone(), s.value))
            .collect()
    };
    let hr_source = source_stats("bamboo");
    let workday_source = source_stats("workday");
    let by_status: BTreeMap<String, i64> = ops_by_status(&store)?.into_iter().collect();
    let by_cause: Vec<RetryCause> = {
        let mut stmt = store.conn().prepare(
            "SELECT coalesce(error_class, ''), http_status, vendor_code, count(*) FROM op_attempts
             WHERE outcome = 'retry' GROUP BY 1, 2, 3 ORDER BY 4 DESC",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok(RetryCause {
                class: r.get(0)?,
                http_status: r.get(1)?,
                code: r.get(2)?,
                count: r.get(3)?,
            })
        })?;
        rows.collect::<rusqlite::Result<_>>()?
    };
    let count_class = |c: &str| -> i64 {
        by_cause
            .iter()
            .filter(|r| r.class == c)
            .map(|r| r.count)
            .sum()
    };
    let retries = Retries {
        total: by_cause.iter().map(|r| r.count).sum(),
        rate_limited: count_class("rate_limited"),
        transient: count_class("transient"),
        by_cause: by_cause.clone(),
    };
    let approvals = admin::pending_approvals(&store)?;
    let mut pending_by_entitlement = BTreeMap::new();
    for a in &approvals {
        *pending_by_entitlement
            .entry(a.entitlement.clone())
            .or_insert(0) += 1;
    }
    let failure_groups = admin::failure_groups(&store)?
        .into_iter()
        .map(|(rc, ops)| FailureGroup {
            key: rc.key(),
            count: ops.len(),
            people: ops.iter().map(|o| o.person_id.clone()).collect(),
            message: ops
                .first()
                .and_then(|o| o.last_error_message.clone())
                .unwrap_or_default(),
            system: rc.system,
            class: rc.class,
            cause: rc.code_or_message,
        })
        .collect();
    let audit = match store.audit_verify()? {
        Ok(n) => AuditSummary {
            events: n as i64,
            verified: true,
            problem: None,
        },
        Err(p) => AuditSummary {
            events: store.audit_count()?,
            verified: false,
            problem: Some(p.to_string()),
        },
    };
    drop(store);
    let duplicate_creates = systems.iter().map(|s| s.duplicate_creates).sum();
    let flaky = &shared.timeline.flaky;
    Ok(DemoSummary {
        seed: demo.seed,
        elapsed_secs: demo.elapsed().as_secs_f64(),
        home: demo.home.display().to_string(),
        home_kept: demo.keep_home,
        keychain: KeychainInfo {
            backend: demo.keychain_backend.to_string(),
            service: demo.keychain.service().to_string(),
            fallback: demo.keychain_fallback,
        },
        notices: demo.notices.clone(),
        wave: demo.wave.clone(),
        operations: Operations {
            total: by_status.values().sum(),
            by_status,
        },
        retries,
        throttled: systems.iter().map(|s| s.served.throttled).sum(),
        storms: log.storms,
        flaky: FlakySummary {
            system: flaky.system.clone(),
            from_secs: flaky.from_secs,
            until_secs: flaky.until_secs,
            began: log.flaky_began_secs.is_some(),
            began_at_secs: log.flaky_began_secs,
            outages_begun: log.outages_begun,
            ended: log.flaky_ended_secs.is_some(),
        },
        pending_approvals: approvals.len(),
        pending_approvals_by_entitlement: pending_by_entitlement,
        failure_groups,
        leaver: log.leaver.clone(),
        hr_source,
        workday_source,
        duplicate_creates,
        invariants_hold: duplicate_creates == 0 && audit.verified,
        audit,
        engine: None,
        scenario: log.events,
        reconcile: None,
        systems,
    })
}

impl DemoSummary {
    /// The summary as text, for a terminal.
    pub fn render(&self) -> String {
        let mut o = String::new();
        let _ = self.render_into(&mut o);
        o
    }

    fn render_into(&self, o: &mut String) -> std::fmt::Result {
        writeln!(
            o,
            "accessdesk demo: {:.0} s of the Northwind Lattice onboarding wave (seed {})",
            self.elapsed_secs, self.seed
        )?;
        writeln!(o)?;
        let statuses: Vec<String> = self
            .operations
            .by_status
            .iter()
            .map(|(s, n)| format!("{n} {s}"))
            .collect();
        line(
            o,
            "Wave",
            &format!(
                "plan {}: {} operations ({} queued, {} waiting for approval){}",
                self.wave.plan,
                self.wave.operations,
                self.wave.queued,
                self.wave.pending_approval,
                if self.wave.held_reason.is_some() {
                    "; held by the mass-change guard and approved as `demo`"
                } else {
                    ""
                }
            ),
        )?;
        line(
            o,
            "Operations",
            &format!("{} total: {}", self.operations.total, statuses.join(", ")),
        )?;
        let causes: Vec<String> = self
            .retries
            .by_cause
            .iter()
            .map(|c| {
                let mut what = c.class.clone();
                let detail: Vec<String> = c
                    .http_status
                    .map(|s| format!("HTTP {s}"))
                    .into_iter()
                    .chain(c.code.clone())
                    .collect();
                if !detail.is_empty() {
                    what = format!("{what} ({})", detail.join(" "));
                }
                format!("{} {what}", c.count)
            })
            .collect();
        line(
            o,
            "Retries",
            &if causes.is_empty() {
                "none scheduled by the engine (the adapters' own retries absorbed every fault)"
                    .to_string()
            } else {
                format!(
                    "{} scheduled by the engine: {}",
                    self.retries.total,
                    causes.join(", ")
                )
            },
        )?;
        for s in &self.systems {
            line(
                o,
                &format!("Simulator {}", s.name),
                &format!(
                    "{} requests; {} answered 429 ({} by its rate windows); {} answered 5xx",
                    s.served.requests,
                    s.served.throttled,
                    s.served.rate_window_refusals,
                    s.served.server_errors
                ),
            )?;
        }
        line(o, "429 storms", &format!("{} started", self.storms))?;
        let f = &self.flaky;
        line(
            o,
            "Flaky system",
            &format!(
                "{}, T+{:.0}s to T+{:.0}s: {}",
                f.system,
                f.from_secs,
                f.until_secs,
                match (f.began_at_secs, f.ended) {
                    (None, _) => "not reached".to_string(),
                    (Some(at), false) => format!(
                        "began at T+{at:.1}s, {} outage(s) so far, still flaky when the run ended",
                        f.outages_begun
                    ),
                    (Some(at), true) =>
                        format!("began at T+{at:.1}s, {} outage(s), over", f.outages_begun),
                }
            ),
        )?;
        let by_ent: Vec<String> = self
            .pending_approvals_by_entitlement
            .iter()
            .map(|(e, n)| format!("{e} {n}"))
            .collect();
        line(
            o,
            "Approvals",
            &format!(
                "{} pending{}",
                self.pending_approvals,
                if by_ent.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", by_ent.join(", "))
                }
            ),
        )?;
        if self.failure_groups.is_empty() {
            line(o, "Triage", "no failed operations")?;
        }
        for g in &self.failure_groups {
            line(
                o,
                "Triage",
                &format!(
                    "{} x {} ({}): {}",
                    g.count,
                    g.key,
                    g.people.join(", "),
                    g.message
                ),
            )?;
        }
        line(
            o,
            "Leaver",
            &match &self.leaver {
                None => "not reached".to_string(),
                Some(l) => match l.deactivated_after_ms {
                    Some(ms) => format!(
                        "{} ({}) left at T+{:.1}s; deactivated after {:.2} s, ahead of {} queued operations",
                        l.name,
                        l.person,
                        l.terminated_at_secs,
                        ms as f64 / 1000.0,
                        l.jumped_ahead_of
                    ),
                    None => format!(
                        "{} ({}) left at T+{:.1}s; deactivation {}",
                        l.name, l.person, l.terminated_at_secs, l.status
                    ),
                },
            },
        )?;
        let hr = |k: &str| self.hr_source.get(k).copied().unwrap_or(0);
        line(
            o,
            "HR source",
            &format!(
                "BambooHR: {} webhook deliveries, {} polls; {} joiner(s), {} mover(s), {} leaver(s); {} refused",
                hr("received"),
                hr("polls"),
                hr("changes:joiner"),
                hr("changes:mover"),
                hr("changes:leaver"),
                hr("failed")
            ),
        )?;
        let wd = |k: &str| self.workday_source.get(k).copied().unwrap_or(0);
        line(
            o,
            "",
            &format!(
                "Workday (contractors): {} polls; {} joiner(s), {} leaver(s); {} refused",
                wd("polls"),
                wd("changes:joiner"),
                wd("changes:leaver"),
                wd("failed")
            ),
        )?;
        line(
            o,
            "Duplicates",
            &format!("{} accounts created twice", self.duplicate_creates),
        )?;
        line(
            o,
            "Audit chain",
            &match &self.audit.problem {
                None => format!("verified ({} events)", self.audit.events),
                Some(p) => format!("BROKEN: {p}"),
            },
        )?;
        line(
            o,
            "Keychain",
            &format!(
                "{} (service {}){}",
                self.keychain.backend,
                self.keychain.service,
                if self.keychain.fallback {
                    ", in memory because no session keyring was usable"
                } else {
                    ""
                }
            ),
        )?;
        line(
            o,
            "Home",
            &format!(
                "{} ({})",
                self.home,
                if self.home_kept {
                    "kept"
                } else {
                    "removed on exit"
                }
            ),
        )?;
        if let Some(r) = &self.reconcile {
            let show = |m: &BTreeMap<String, usize>| {
                if m.is_empty() {
                    "none".to_string()
                } else {
                    m.iter()
                        .map(|(c, n)| format!("{n} {c}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                }
            };
            line(o, "Reconcile", &format!("found {}", show(&r.found)))?;
            line(
                o,
                "",
                &format!(
                    "enforced {}, refused {} (unmanaged access is never changed); afterwards {}",
                    r.enforced,
                    r.refused,
                    show(&r.after)
                ),
            )?;
        }
        writeln!(o)?;
        if self.invariants_hold {
            writeln!(
                o,
                "OK: no account was created twice and the audit chain is intact."
            )
        } else {
            writeln!(
                o,
                "FAILED: {}",
                [
                    (self.duplicate_creates > 0).then_some("an account was created twice"),
                    (!self.audit.verified).then_some("the audit chain is broken"),
                ]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>()
                .join("; ")
            )
        }
    }
}

fn line(o: &mut String, label: &str, text: &str) -> std::fmt::Result {
    writeln!(o, "  {label:<16} {text}")
}
