//! Reconcile: correlate what a run observed with people, classify the drift into
//! findings, and make complete observations the actual access the planner diffs against.
//!
//! **Correlation.** Each observed account is matched to people by the system's rules
//! (`correlate` in systems.toml, default link → hris_id → email → login), tried in order;
//! the first rule that names anyone decides. One candidate: linked. None: orphan. More
//! than one: ambiguous, flagged, never guessed. An account that carries an HR id is never
//! matched to anyone else by a weaker rule: if the link names someone else it is
//! ambiguous, and if the HR id is nobody's it is an orphan. Only a match by link or HR id
//! *proves* the account is the person's; matches by e-mail or login are reported as such,
//! and the observed access on such an account is not attached to the person (identity
//! before access: the engine would stop at an identity conflict before acting on it).
//!
//! **Classification** (`Class`): leavers with access first, then by severity. A grant or
//! removal with an operation already in flight (queued, running, retrying, verifying,
//! scheduled, awaiting approval, blocked) is work in progress, not drift. Nothing is
//! concluded from what a read did not cover: an incomplete read reports orphans and
//! attribute drift only once its account listing finished, and memberships only for the
//! groups it read in full. Accounts that appeared during the read are left for the next.
//!
//! **Reality drives the plan.** A complete read replaces the system's rows of `accounts`
//! and `observed_access` (marked `observed`), except what accessdesk changed since the
//! read started: a membership added or removed, or an account written, by an operation
//! that succeeded after the read began stays as the operation left it.

use crate::config::systems::{Correlate, OnLeave};
use crate::config::{Catalog, SystemEntry};
use crate::model::{Person, RiskLevel};
use crate::store::Store;
use crate::store::reconcile::{Checkpoint, NewFinding, ObservedAccount};
use crate::{Error, Result};
use chrono::{DateTime, Utc};
use rusqlite::params;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap, HashSet};

/// Finding classes, in the order they are listed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Class {
    LeaverWithAccess,
    Orphan,
    Excess,
    Unmanaged,
    Ambiguous,
    Missing,
    AttributeDrift,
}

impl Class {
    pub const ALL: [Class; 7] = [
        Class::LeaverWithAccess,
        Class::Orphan,
        Class::Excess,
        Class::Unmanaged,
        Class::Ambiguous,
        Class::Missing,
        Class::AttributeDrift,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Class::LeaverWithAccess => "leaver_with_access",
            Class::Orphan => "orphan",
            Class::Excess => "excess",
            Class::Unmanaged => "unmanaged",
            Class::Ambiguous => "ambiguous",
            Class::Missing => "missing",
            Class::AttributeDrift => "attribute_drift",
        }
    }

    pub fn parse(s: &str) -> Option<Class> {
        Self::ALL.into_iter().find(|c| c.as_str() == s)
    }
}

/// Severity: critical, high, medium, low.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    Critical,
    High,
    Medium,
    Low,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        ["critical", "high", "medium", "low"][self as usize]
    }
}

/// A finding's severity, from its class and the entitlement's risk. A leaver still
/// holding access is always critical; so is excess privileged access.
pub fn severity(class: Class, risk: Option<RiskLevel>, active: bool) -> Severity {
    match class {
        Class::LeaverWithAccess => Severity::Critical,
        Class::Excess => match risk {
            Some(RiskLevel::Privileged) => Severity::Critical,
            Some(RiskLevel::High) => Severity::High,
            Some(RiskLevel::Medium) => Severity::Medium,
            _ => Severity::Low,
        },
        Class::Orphan => match (active, risk) {
            (false, _) => Severity::Low,
            (true, Some(RiskLevel::Privileged | RiskLevel::High)) => Severity::High,
            (true, _) => Severity::Medium,
        },
        Class::Unmanaged | Class::Ambiguous => Severity::Medium,
        Class::Missing | Class::AttributeDrift => Severity::Low,
    }
}

fn finding(
    class: Class,
    sev: Severity,
    system: &str,
    person: Option<&str>,
    acct: Option<&ObservedAccount>,
    entitlement: Option<&str>,
    detail: String,
) -> NewFinding {
    let leaver = class == Class::LeaverWithAccess;
    NewFinding {
        class: class.as_str(),
        severity: sev.as_str(),
        // Leavers first; then by severity; then by class (the order of `Class`).
        rank: if leaver { 0 } else { 100 } + 10 * sev as i64 + class as i64,
        system: system.to_string(),
        person: person.map(str::to_string),
        account: acct.map(|a| a.login.clone()),
        account_id: acct.map(|a| a.external_id.clone()),
        entitlement: entitlement.map(str::to_string),
        detail,
    }
}

/// Everything classification needs that is not the observation itself.
#[derive(Debug, Default)]
pub struct World {
    pub people: HashMap<String, Person>,
    /// Lower-cased work e-mail → people.
    pub by_email: HashMap<String, Vec<String>>,
    /// Person → intended entitlements (all systems).
    pub intended: HashMap<String, Vec<String>>,
    /// system → lower-cased login → the person accessdesk's accounts table links it to.
    pub links: HashMap<String, HashMap<String, String>>,
    /// system → lower-cased login → the person accessdesk assigned that login.
    pub logins: HashMap<String, HashMap<String, String>>,
    /// (person, system, entitlement or None for the account) with an operation still in
    /// flight: a grant or removal already on its way is not drift.
    pub in_flight: HashSet<(String, String, Option<String>)>,
    pub now: DateTime<Utc>,
}

impl World {
    pub fn load(store: &Store, now: DateTime<Utc>) -> Result<World> {
        let mut w = World {
            now,
            ..Default::default()
        };
        for p in store.all_people()? {
            w.by_email
                .entry(p.email.to_lowercase())
                .or_default()
                .push(p.hris_id.clone());
            w.people.insert(p.hris_id.clone(), p);
        }
        let c = store.conn();
        let mut st = c.prepare("SELECT person_id, entitlement FROM intended_grants")?;
        let mut rows = st.query([])?;
        while let Some(r) = rows.next()? {
            w.intended.entry(r.get(0)?).or_default().push(r.get(1)?);
        }
        let mut st = c.prepare(
            "SELECT system, lower(login), person_id FROM accounts WHERE person_id IS NOT NULL",
        )?;
        let mut rows = st.query([])?;
        while let Some(r) = rows.next()? {
            w.links
                .entry(r.get(0)?)
                .or_default()
                .insert(r.get(1)?, r.get(2)?);
        }
        let mut st = c.prepare(
            "SELECT person_id, system, entitlement FROM operations
             WHERE status IN ('queued','running','retry_wait','verifying','scheduled','pending_approval','blocked')",
        )?;
        let mut rows = st.query([])?;
        while let Some(r) = rows.next()? {
            w.in_flight.insert((r.get(0)?, r.get(1)?, r.get(2)?));
        }
        let mut st = c.prepare("SELECT system, login_key, person_id FROM logins")?;
        let mut rows = st.query([])?;
        while let Some(r) = rows.next()? {
            w.logins
                .entry(r.get(0)?)
                .or_default()
                .insert(r.get(1)?, r.get(2)?);
        }
        Ok(w)
    }
}

/// How an account was matched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Match {
    Linked {
        person: String,
        by: Correlate,
    },
    Orphan {
        why: String,
    },
    Ambiguous {
        candidates: Vec<String>,
        why: String,
    },
}

/// Match one account to people by the system's rules.
pub fn correlate(w: &World, system: &str, rules: &[Correlate], a: &ObservedAccount) -> Match {
    let login = a.login.to_lowercase();
    let linked = w.links.get(system).and_then(|m| m.get(&login));
    // The target's own claim comes first: an account carrying an HR id is that person's
    // or nobody's, whatever a weaker rule would say.
    if let Some(h) = a.hris_id.as_deref().filter(|h| !h.is_empty()) {
        if let Some(l) = linked
            && l != h
            && rules.contains(&Correlate::Link)
        {
            return Match::Ambiguous {
                candidates: vec![l.clone(), h.to_string()],
                why: format!("linked to {l}, but the account carries HR id {h}"),
            };
        }
        if rules.contains(&Correlate::HrisId) {
            return if w.people.contains_key(h) {
                Match::Linked {
                    person: h.to_string(),
                    by: if linked.is_some() {
                        Correlate::Link
                    } else {
                        Correlate::HrisId
                    },
                }
            } else {
                Match::Orphan {
                    why: format!("carries HR id {h}, which is nobody in HR"),
                }
            };
        }
    }
    for rule in rules {
        let candidates: Vec<String> = match rule {
            Correlate::Link => linked.into_iter().cloned().collect(),
            Correlate::HrisId => Vec::new(), // handled above
            Correlate::Email => a
                .email
                .as_deref()
                .or_else(|| a.login.contains('@').then_some(a.login.as_str()))
                .and_then(|e| w.by_email.get(&e.to_lowercase()))
                .cloned()
                .unwrap_or_default(),
            Correlate::Login => w
                .logins
                .get(system)
                .and_then(|m| m.get(&login))
                .into_iter()
                .cloned()
                .collect(),
        };
        match candidates.len() {
            0 => continue,
            1 => {
                return Match::Linked {
                    person: candidates[0].clone(),
                    by: *rule,
                };
            }
            _ => {
                return Match::Ambiguous {
                    why: format!(
                        "{} people match by {}: {}",
                        candidates.len(),
                        rule.as_str(),
                        candidates.join(", ")
                    ),
                    candidates,
                };
            }
        }
    }
    Match::Orphan {
        why: "no person matches it".into(),
    }
}

/// One system's observation, as classification reads it.
#[derive(Debug, Clone)]
pub struct SystemObservation {
    pub read: Checkpoint,
    pub accounts: Vec<ObservedAccount>,
    /// (entitlement, vendor id, catalogued), in the order the read went through them.
    pub groups: Vec<(String, String, bool)>,
    /// (entitlement, account external id).
    pub members: Vec<(String, String)>,
}

impl SystemObservation {
    pub fn load(store: &Store, run: i64, read: Checkpoint) -> Result<SystemObservation> {
        Self::load_from(store.conn(), run, read)
    }

    /// The same, through any connection (a parallel reader).
    pub fn load_from(
        c: &rusqlite::Connection,
        run: i64,
        read: Checkpoint,
    ) -> Result<SystemObservation> {
        use crate::store::reconcile as r;
        Ok(SystemObservation {
            accounts: r::observed_accounts_in(c, run, &read.system)?,
            groups: r::observed_groups_in(c, run, &read.system)?,
            members: r::observed_members_in(c, run, &read.system)?,
            read,
        })
    }

    fn complete(&self) -> bool {
        self.read.status == "complete"
    }

    /// Whether the account listing was read to its end.
    fn accounts_read(&self) -> bool {
        self.complete() || self.read.phase != "accounts"
    }

    /// The groups whose members were read in full.
    fn groups_read(&self) -> HashSet<&str> {
        let n = if self.complete() {
            self.groups.len()
        } else if self.read.phase == "members" {
            (self.read.ent_index as usize).min(self.groups.len())
        } else {
            0
        };
        self.groups[..n].iter().map(|g| g.0.as_str()).collect()
    }
}

/// The attributes the target reported that differ from what accessdesk would write for
/// the person now. HR's own fields are compared directly; names are shaped (the costly
/// part) only when the target reported one.
fn attribute_drift(p: &Person, entry: &SystemEntry, a: &ObservedAccount) -> Vec<String> {
    let mut differs = Vec::new();
    let mut shaped: Option<BTreeMap<String, String>> = None;
    for (k, have) in &a.attributes {
        let direct = match k.as_str() {
            "manager" => continue,
            "department" => Some(p.department.as_str()),
            "title" => Some(p.title.as_str()),
            "costCenter" => Some(p.cost_center.as_str()),
            "location" => Some(p.location.as_str()),
            "email" => Some(p.email.as_str()),
            _ => None,
        };
        let should: String = match direct {
            Some(v) => v.to_string(),
            None => shaped
                .get_or_insert_with(|| {
                    crate::adapters::AccountSpec::for_person(p, entry.system.kind, &a.login)
                        .synced_attributes()
                })
                .get(k)
                .cloned()
                .unwrap_or_default(),
        };
        // Compare with what the adapter would have written: IAM drops characters a tag
        // value cannot hold ("R&D" is stored as "RD").
        let written = match entry.system.kind {
            crate::model::SystemKind::AwsIam => crate::adapters::aws_iam::tag_value(&should),
            _ => should.trim().to_string(),
        };
        if have.trim() != written {
            differs.push(format!("{k}: target {have:?}, HR {should:?}"));
        }
    }
    differs
}

/// Classify one system's observation. Pure: the same inputs give the same findings.
pub fn classify(w: &World, entry: &SystemEntry, obs: &SystemObservation) -> Vec<NewFinding> {
    let system = entry.system.name.as_str();
    let prefix = format!("{system}:");
    let mut out = Vec::new();
    let risk_of = |ent: &str| -> Option<RiskLevel> {
        let r: crate::model::EntitlementRef = ent.parse().ok()?;
        entry.entitlements.get(&(r.kind, r.name)).map(|e| e.risk)
    };
    let read_groups = obs.groups_read();
    let catalogued: HashSet<&str> = obs
        .groups
        .iter()
        .filter(|g| g.2)
        .map(|g| g.0.as_str())
        .collect();
    let mut held: HashMap<&str, Vec<&str>> = HashMap::new();
    for (ent, acct) in &obs.members {
        held.entry(acct.as_str()).or_default().push(ent.as_str());
    }
    // People with an account here (by any match), so intended access without one is
    // reported as a missing account.
    let mut with_account: HashSet<&str> = HashSet::new();
    if obs.accounts_read() {
        for a in obs.accounts.iter().filter(|a| !a.late) {
            let mine = held
                .get(a.external_id.as_str())
                .cloned()
                .unwrap_or_default();
            let top_risk = mine.iter().filter_map(|e| risk_of(e)).max();
            match correlate(w, system, &entry.correlate, a) {
                Match::Orphan { why } => out.push(finding(
                    Class::Orphan,
                    severity(Class::Orphan, top_risk, a.active),
                    system,
                    None,
                    Some(a),
                    None,
                    format!(
                        "{} account {} ({why}); {} entitlements",
                        if a.active { "active" } else { "inactive" },
                        a.login,
                        mine.len()
                    ),
                )),
                Match::Ambiguous { why, .. } => out.push(finding(
                    Class::Ambiguous,
                    severity(Class::Ambiguous, None, a.active),
                    system,
                    None,
                    Some(a),
                    None,
                    format!(
                        "account {}: {why}; link it with `accessdesk account link`",
                        a.login
                    ),
                )),
                Match::Linked { person, by } => {
                    let Some(p) = w.people.get(&person) else {
                        continue;
                    };
                    let pid = p.hris_id.as_str();
                    with_account.insert(pid);
                    let by_note = if by.proves() {
                        String::new()
                    } else {
                        format!(" (matched by {} only, not proven)", by.as_str())
                    };
                    if p.is_leaver(w.now) {
                        let keeps = mine.iter().filter(|e| read_groups.contains(*e)).count();
                        // Where accounts have no sign-in state (the identity store), what a
                        // leaver keeps is their memberships.
                        let stateless = !has_sign_in_state(entry.system.kind);
                        let groups_matter = stateless || entry.on_leave != OnLeave::Deactivate;
                        let active = a.active && !stateless;
                        if active || (groups_matter && keeps > 0) {
                            let what = if active {
                                format!("account {} still active", a.login)
                            } else {
                                format!(
                                    "account {} inactive but holds {keeps} entitlements",
                                    a.login
                                )
                            };
                            out.push(finding(
                                Class::LeaverWithAccess,
                                Severity::Critical,
                                system,
                                Some(pid),
                                Some(a),
                                None,
                                format!("{} left ({}); {what}{by_note}", display(p), left_on(p)),
                            ));
                        }
                        continue;
                    }
                    let intended: HashSet<&str> = w
                        .intended
                        .get(pid)
                        .map(|v| {
                            v.iter()
                                .filter(|e| e.starts_with(&prefix))
                                .map(String::as_str)
                                .collect()
                        })
                        .unwrap_or_default();
                    let mine_set: HashSet<&str> = mine.iter().copied().collect();
                    let moving = |ent: Option<&str>| {
                        w.in_flight.contains(&(
                            pid.to_string(),
                            system.to_string(),
                            ent.map(str::to_string),
                        ))
                    };
                    for ent in &mine {
                        if !read_groups.contains(ent) || intended.contains(ent) {
                            continue;
                        }
                        if catalogued.contains(ent) && moving(Some(ent)) {
                            continue;
                        }
                        if catalogued.contains(ent) {
                            out.push(finding(
                                Class::Excess,
                                severity(Class::Excess, risk_of(ent), a.active),
                                system,
                                Some(pid),
                                Some(a),
                                Some(ent),
                                format!(
                                    "{} holds {ent}, which no policy grants{by_note}",
                                    display(p)
                                ),
                            ));
                        } else {
                            out.push(finding(
                                Class::Unmanaged,
                                Severity::Medium,
                                system,
                                Some(pid),
                                Some(a),
                                Some(ent),
                                format!("{} holds {ent}, which the catalogue does not list (reported, never changed)", display(p)),
                            ));
                        }
                    }
                    let mut missing: Vec<&&str> = intended
                        .iter()
                        .filter(|e| {
                            read_groups.contains(**e) && !mine_set.contains(**e) && !moving(Some(e))
                        })
                        .collect();
                    missing.sort();
                    for ent in missing {
                        out.push(finding(
                            Class::Missing,
                            Severity::Low,
                            system,
                            Some(pid),
                            Some(a),
                            Some(ent),
                            format!("{} should hold {ent} (policy), the target does not show it{by_note}", display(p)),
                        ));
                    }
                    // Attributes: only those the target reported, against what HR says.
                    let differs = attribute_drift(p, entry, a);
                    if !differs.is_empty() && a.active {
                        out.push(finding(
                            Class::AttributeDrift,
                            Severity::Low,
                            system,
                            Some(pid),
                            Some(a),
                            None,
                            format!("{}: {}{by_note}", display(p), differs.join("; ")),
                        ));
                    }
                }
            }
        }
        // Intended access for someone with no account here at all.
        let mut people: Vec<&String> = w.intended.keys().collect();
        people.sort();
        for pid in people {
            if with_account.contains(pid.as_str())
                || w.in_flight
                    .contains(&(pid.to_string(), system.to_string(), None))
            {
                continue;
            }
            let Some(p) = w.people.get(pid) else { continue };
            if p.is_leaver(w.now) {
                continue;
            }
            let n = w.intended[pid]
                .iter()
                .filter(|e| e.starts_with(&prefix))
                .count();
            if n > 0 {
                out.push(finding(
                    Class::Missing,
                    Severity::Low,
                    system,
                    Some(pid),
                    None,
                    None,
                    format!(
                        "{} has no account in {system}; policy grants {n} entitlements there",
                        display(p)
                    ),
                ));
            }
        }
    }
    out
}

/// Whether accounts of this kind can be disabled (sign-in stopped) while they exist. The
/// AWS identity store has no such state: deactivating there removes the memberships.
pub fn has_sign_in_state(kind: crate::model::SystemKind) -> bool {
    kind != crate::model::SystemKind::AwsIdentityStore
}

fn display(p: &Person) -> String {
    format!("{} {} ({})", p.given_name, p.family_name, p.hris_id)
}

fn left_on(p: &Person) -> String {
    match (p.status, p.end_date) {
        (_, Some(d)) => format!("end date {d}"),
        _ => "terminated in HR".into(),
    }
}

/// What reconciling a run found.
#[derive(Debug, Clone, Serialize)]
pub struct Reconciled {
    pub run: i64,
    pub complete: bool,
    pub systems: Vec<SystemSummary>,
    pub findings: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct SystemSummary {
    pub system: String,
    pub complete: bool,
    pub accounts: i64,
    pub memberships: i64,
    pub observed_at: Option<String>,
    pub error: Option<String>,
}

/// One system's observation and the findings classified from it.
type Judged = (SystemObservation, Vec<NewFinding>);

/// A run correlated and classified, not yet written.
pub struct Classified {
    pub world: World,
    pub findings: Vec<NewFinding>,
    pub systems: Vec<SystemSummary>,
    pub observations: Vec<SystemObservation>,
}

/// Load a run's observations and classify every system in it (no writes). The systems
/// are classified in parallel, one reader connection each where the store has a file.
pub fn classify_run(store: &Store, catalog: &Catalog, run: i64) -> Result<Classified> {
    let world = World::load(store, Utc::now())?;
    let reads: Vec<Checkpoint> = store
        .checkpoints(run)?
        .into_iter()
        .filter(|c| catalog.systems.contains_key(&c.system))
        .collect();
    let mut per_system: Vec<Judged> = Vec::new();
    let parallel = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(4);
    let chunks: Vec<Vec<Checkpoint>> = {
        let mut c: Vec<Vec<Checkpoint>> = vec![Vec::new(); parallel.max(1)];
        for (i, r) in reads.into_iter().enumerate() {
            c[i % parallel.max(1)].push(r);
        }
        c
    };
    // Chunk 0 (and any chunk without a reader of its own) runs here; the others on
    // threads with their own read connections.
    let mut inline: Vec<Checkpoint> = Vec::new();
    let mut threaded: Vec<(rusqlite::Connection, Vec<Checkpoint>)> = Vec::new();
    for (i, chunk) in chunks.into_iter().enumerate() {
        match (i, store.open_reader()?) {
            (0, _) | (_, None) => inline.extend(chunk),
            (_, Some(c)) => threaded.push((c, chunk)),
        }
    }
    let classify_all =
        |conn: &rusqlite::Connection, chunk: Vec<Checkpoint>| -> Result<Vec<Judged>> {
            let mut out = Vec::new();
            for cp in chunk {
                let entry = &catalog.systems[&cp.system];
                let obs = SystemObservation::load_from(conn, run, cp)?;
                let f = classify(&world, entry, &obs);
                out.push((obs, f));
            }
            Ok(out)
        };
    let results: Vec<Result<Vec<Judged>>> = std::thread::scope(|scope| {
        let handles: Vec<_> = threaded
            .into_iter()
            .map(|(conn, chunk)| scope.spawn(move || classify_all(&conn, chunk)))
            .collect();
        let mut results = vec![classify_all(store.conn(), inline)];
        results.extend(handles.into_iter().map(|h| {
            h.join()
                .unwrap_or_else(|_| Err(Error::Failed("a classifier thread panicked".into())))
        }));
        results
    });
    for r in results {
        per_system.extend(r?);
    }
    per_system.sort_by(|a, b| a.0.read.system.cmp(&b.0.read.system));
    let mut findings = Vec::new();
    let mut systems = Vec::new();
    let mut observations = Vec::new();
    for (obs, f) in per_system {
        findings.extend(f);
        systems.push(SystemSummary {
            system: obs.read.system.clone(),
            complete: obs.complete(),
            accounts: obs.read.accounts,
            memberships: obs.read.memberships,
            observed_at: obs.read.observed_at.clone(),
            error: obs.read.error.clone(),
        });
        observations.push(obs);
    }
    findings.sort_by(|a, b| {
        (a.rank, &a.system, &a.person, &a.account, &a.entitlement).cmp(&(
            b.rank,
            &b.system,
            &b.person,
            &b.account,
            &b.entitlement,
        ))
    });
    Ok(Classified {
        world,
        findings,
        systems,
        observations,
    })
}

/// Correlate and classify a run, store its findings, and make each complete read the
/// actual access the planner sees.
pub fn reconcile_run(
    store: &mut Store,
    catalog: &Catalog,
    run: i64,
    actor: &str,
) -> Result<Reconciled> {
    let meta = store.run(run)?.ok_or_else(|| {
        Error::usage(
            format!("no observation run {run}"),
            "see `accessdesk findings list` for runs",
        )
    })?;
    let c = classify_run(store, catalog, run)?;
    let n = c.findings.len();
    store.write(|tx| {
        tx.store_findings(run, &c.findings, actor)?;
        for obs in c.observations.iter().filter(|o| o.complete()) {
            let entry = &catalog.systems[&obs.read.system];
            adopt_observation(tx, &c.world, entry, obs, &meta.started_at, actor)?;
        }
        Ok(())
    })?;
    Ok(Reconciled {
        run,
        complete: meta.status == "complete" && c.systems.iter().all(|s| s.complete),
        systems: c.systems,
        findings: n,
    })
}

/// Make a complete read the system's actual access: accounts and catalogued memberships
/// as observed, with person links only where proven, keeping what operations changed
/// after the read started.
fn adopt_observation(
    tx: &mut crate::store::Tx<'_>,
    w: &World,
    entry: &SystemEntry,
    obs: &SystemObservation,
    read_started: &str,
    actor: &str,
) -> Result<()> {
    let system = entry.system.name.as_str();
    let observed_at = obs
        .read
        .observed_at
        .clone()
        .unwrap_or_else(|| read_started.to_string());
    // What operations changed since the read began: (login, entitlement) memberships
    // and the accounts they wrote. Their rows stay as the operations left them.
    let mut touched_access: HashSet<(String, String)> = HashSet::new();
    let mut touched_accounts: HashSet<String> = HashSet::new();
    {
        let c = tx.conn();
        let mut st = c.prepare(
            "SELECT account_login, entitlement FROM observed_access WHERE system = ?1 AND source = 'recorded' AND observed_at >= ?2",
        )?;
        let mut rows = st.query(params![system, read_started])?;
        while let Some(r) = rows.next()? {
            touched_access.insert((r.get::<_, String>(0)?.to_lowercase(), r.get(1)?));
        }
        let mut st = c.prepare(
            "SELECT a.login, o.entitlement FROM operations o JOIN accounts a ON a.system = o.system AND a.person_id = o.person_id
             WHERE o.system = ?1 AND o.status = 'succeeded' AND o.updated_at >= ?2 AND o.entitlement IS NOT NULL",
        )?;
        let mut rows = st.query(params![system, read_started])?;
        while let Some(r) = rows.next()? {
            touched_access.insert((r.get::<_, String>(0)?.to_lowercase(), r.get(1)?));
        }
        let mut st = c.prepare(
            "SELECT lower(login) FROM accounts WHERE system = ?1 AND source = 'recorded' AND observed_at >= ?2",
        )?;
        let mut rows = st.query(params![system, read_started])?;
        while let Some(r) = rows.next()? {
            touched_accounts.insert(r.get(0)?);
        }
    }
    let by_id: HashMap<&str, &ObservedAccount> = obs
        .accounts
        .iter()
        .map(|a| (a.external_id.as_str(), a))
        .collect();
    // Accounts: proven owners only.
    let mut seen_logins: HashSet<String> = HashSet::new();
    for a in &obs.accounts {
        let key = a.login.to_lowercase();
        seen_logins.insert(key.clone());
        if touched_accounts.contains(&key) {
            continue;
        }
        let owner = match correlate(w, system, &entry.correlate, a) {
            Match::Linked { person, by } if by.proves() => Some(person),
            _ => None,
        };
        tx.conn()
            .prepare_cached(
                "INSERT INTO accounts (system, person_id, login, external_id, active, observed_at, source)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'observed')
                 ON CONFLICT(system, login) DO UPDATE SET
                   person_id = COALESCE(accounts.person_id, excluded.person_id),
                   external_id = excluded.external_id, active = excluded.active,
                   observed_at = excluded.observed_at, source = 'observed'",
            )?
            .execute(params![system, owner, a.login, a.external_id, a.active, observed_at])?;
    }
    // Accounts the target no longer has (and no operation wrote since the read began).
    let gone: Vec<String> = {
        let mut st = tx.conn().prepare(
            "SELECT login FROM accounts WHERE system = ?1 AND NOT (source = 'recorded' AND observed_at >= ?2)",
        )?;
        st.query_map(params![system, read_started], |r| r.get::<_, String>(0))?
            .collect::<rusqlite::Result<Vec<_>>>()?
            .into_iter()
            .filter(|l| !seen_logins.contains(&l.to_lowercase()))
            .collect()
    };
    for login in &gone {
        tx.conn()
            .prepare_cached("DELETE FROM observed_access WHERE system = ?1 AND account_login = ?2")?
            .execute(params![system, login])?;
        tx.conn()
            .prepare_cached("DELETE FROM accounts WHERE system = ?1 AND login = ?2")?
            .execute(params![system, login])?;
    }
    // Memberships in catalogued groups, with the person only where the account's owner
    // is proven.
    let person_of: HashMap<String, Option<String>> = {
        let mut st = tx
            .conn()
            .prepare("SELECT lower(login), person_id FROM accounts WHERE system = ?1")?;
        st.query_map([system], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<rusqlite::Result<_>>()?
    };
    let mut want: HashSet<(String, String)> = HashSet::new();
    let catalogued: HashSet<&str> = obs
        .groups
        .iter()
        .filter(|g| g.2)
        .map(|g| g.0.as_str())
        .collect();
    for (ent, acct) in &obs.members {
        if !catalogued.contains(ent.as_str()) {
            continue;
        }
        if let Some(a) = by_id.get(acct.as_str()) {
            want.insert((a.login.clone(), ent.clone()));
        }
    }
    let existing: Vec<(String, String)> = {
        let mut st = tx
            .conn()
            .prepare("SELECT account_login, entitlement FROM observed_access WHERE system = ?1")?;
        st.query_map([system], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<rusqlite::Result<_>>()?
    };
    let mut removed = 0usize;
    for (login, ent) in &existing {
        if want.contains(&(login.clone(), ent.clone()))
            || touched_access.contains(&(login.to_lowercase(), ent.clone()))
        {
            continue;
        }
        tx.conn()
            .prepare_cached(
                "DELETE FROM observed_access WHERE system = ?1 AND account_login = ?2 AND entitlement = ?3",
            )?
            .execute(params![system, login, ent])?;
        removed += 1;
    }
    let mut added = 0usize;
    for (login, ent) in &want {
        if touched_access.contains(&(login.to_lowercase(), ent.clone())) {
            continue;
        }
        let person = person_of.get(&login.to_lowercase()).cloned().flatten();
        added += tx
            .conn()
            .prepare_cached(
                "INSERT INTO observed_access (system, account_login, person_id, entitlement, observed_at, source)
                 VALUES (?1, ?2, ?3, ?4, ?5, 'observed')
                 ON CONFLICT(system, account_login, entitlement) DO UPDATE SET person_id = excluded.person_id,
                   observed_at = excluded.observed_at, source = 'observed'",
            )?
            .execute(params![system, login, person, ent, observed_at])?;
    }
    tx.audit(crate::store::NewAuditEvent {
        actor,
        action: "access.observed_in_full",
        subject: system,
        details: serde_json::json!({"accounts": obs.accounts.len(), "accounts_gone": gone.len(),
                                    "memberships": want.len(), "memberships_gone": removed,
                                    "memberships_written": added, "observed_at": observed_at,
                                    "kept_from_operations_since": touched_access.len()}),
    })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::SystemsConfig;
    use std::path::Path;

    fn world() -> World {
        let mut w = World {
            now: Utc::now(),
            ..Default::default()
        };
        for (id, given, email) in [
            ("E1", "Ann", "ann@x.io"),
            ("E2", "Bob", "bob@x.io"),
            ("E3", "Bob", "bob@x.io"),
            ("E4", "Cy", "cy@x.io"),
        ] {
            let p = Person::new(id, given, "Smith", email);
            w.by_email.entry(email.into()).or_default().push(id.into());
            w.people.insert(id.into(), p);
        }
        w.links
            .entry("okta".into())
            .or_default()
            .insert("ann@x.io".into(), "E1".into());
        w.logins
            .entry("okta".into())
            .or_default()
            .insert("cy.smith".into(), "E4".into());
        w
    }

    fn acct(login: &str, email: Option<&str>, hris: Option<&str>) -> ObservedAccount {
        ObservedAccount {
            external_id: format!("id-{login}"),
            login: login.into(),
            email: email.map(str::to_string),
            active: true,
            hris_id: hris.map(str::to_string),
            attributes: BTreeMap::new(),
            late: false,
        }
    }

    #[test]
    fn the_targets_own_hr_id_outranks_weaker_rules() {
        let w = world();
        let rules = Correlate::DEFAULT;
        // Linked to E1 but carrying E2's HR id: flagged, never guessed.
        let m = correlate(&w, "okta", &rules, &acct("ann@x.io", None, Some("E2")));
        assert!(matches!(m, Match::Ambiguous { .. }), "{m:?}");
        // An HR id nobody has: an orphan, although the e-mail names someone.
        let m = correlate(&w, "okta", &rules, &acct("z", Some("cy@x.io"), Some("E9")));
        assert!(matches!(m, Match::Orphan { .. }), "{m:?}");
        // The HR id proves it.
        let m = correlate(&w, "okta", &rules, &acct("whatever", None, Some("E4")));
        assert_eq!(
            m,
            Match::Linked {
                person: "E4".into(),
                by: Correlate::HrisId
            }
        );
    }

    #[test]
    fn weak_matches_are_reported_as_weak_and_homonyms_are_ambiguous() {
        let w = world();
        let rules = Correlate::DEFAULT;
        // Two people share bob@x.io: ambiguous.
        let m = correlate(
            &w,
            "okta",
            &rules,
            &acct("bob@x.io", Some("bob@x.io"), None),
        );
        assert!(
            matches!(&m, Match::Ambiguous { candidates, .. } if candidates.len() == 2),
            "{m:?}"
        );
        // By e-mail: linked, but not proof.
        let m = correlate(&w, "okta", &rules, &acct("cy@x.io", Some("cy@x.io"), None));
        assert!(
            matches!(
                m,
                Match::Linked {
                    by: Correlate::Email,
                    ..
                }
            ),
            "{m:?}"
        );
        assert!(!Correlate::Email.proves() && !Correlate::Login.proves());
        // By the assigned login, case-insensitively.
        let m = correlate(&w, "okta", &rules, &acct("Cy.Smith", None, None));
        assert_eq!(
            m,
            Match::Linked {
                person: "E4".into(),
                by: Correlate::Login
            }
        );
        // A system that only trusts HR ids leaves the same account an orphan.
        let m = correlate(
            &w,
            "okta",
            &[Correlate::HrisId],
            &acct("cy@x.io", Some("cy@x.io"), None),
        );
        assert!(matches!(m, Match::Orphan { .. }), "{m:?}");
    }

    fn entry() -> SystemEntry {
        let cfg = SystemsConfig::parse(
            Path::new("s.toml"),
            "[systems.okta]\nkind = \"okta\"\n[[systems.okta.entitlements]]\nkind = \"group\"\nname = \"eng\"\n[[systems.okta.entitlements]]\nkind = \"group\"\nname = \"admins\"\nrisk = \"privileged\"\n",
        )
        .unwrap();
        cfg.catalog.systems["okta"].clone()
    }

    fn obs(status: &str, phase: &str, ent_index: i64) -> SystemObservation {
        SystemObservation {
            read: Checkpoint {
                system: "okta".into(),
                status: status.into(),
                phase: phase.into(),
                ent_index,
                cursor: None,
                accounts: 1,
                memberships: 1,
                pages: 1,
                all_groups: true,
                started_at: String::new(),
                observed_at: None,
                error: None,
            },
            accounts: vec![
                acct("ann@x.io", Some("ann@x.io"), Some("E1")),
                acct("nobody@x.io", None, None),
            ],
            groups: vec![
                ("okta:group:admins".into(), "g1".into(), true),
                ("okta:group:eng".into(), "g2".into(), true),
            ],
            members: vec![("okta:group:admins".into(), "id-ann@x.io".into())],
        }
    }

    #[test]
    fn an_incomplete_read_concludes_nothing_about_what_it_did_not_read() {
        let mut w = world();
        w.intended
            .insert("E1".into(), vec!["okta:group:eng".into()]);
        let e = entry();
        let classes = |o: &SystemObservation| {
            classify(&w, &e, o)
                .into_iter()
                .map(|f| (f.class, f.entitlement))
                .collect::<Vec<_>>()
        };
        // Complete: excess admins (privileged), missing eng, one orphan.
        let all = classes(&obs("complete", "done", 2));
        assert!(
            all.contains(&("excess", Some("okta:group:admins".into()))),
            "{all:?}"
        );
        assert!(
            all.contains(&("missing", Some("okta:group:eng".into()))),
            "{all:?}"
        );
        assert!(all.contains(&("orphan", None)), "{all:?}");
        // Stopped while reading eng's members: admins was read (excess stands), eng was
        // not (no missing).
        let part = classes(&obs("incomplete", "members", 1));
        assert!(
            part.contains(&("excess", Some("okta:group:admins".into()))),
            "{part:?}"
        );
        assert!(!part.iter().any(|f| f.0 == "missing"), "{part:?}");
        // Stopped in the account listing: nothing at all.
        assert!(classes(&obs("incomplete", "accounts", 0)).is_empty());
        // An account that appeared during the read is left for the next one.
        let mut late = obs("complete", "done", 2);
        late.accounts[1].late = true;
        assert!(!classes(&late).iter().any(|f| f.0 == "orphan"));
    }

    #[test]
    fn attributes_compare_as_the_adapter_writes_them() {
        let mut p = Person::new("E1", "Ann", "Smith", "ann@x.io");
        p.department = "R&D".into();
        let mut a = acct("ann", None, Some("E1"));
        a.attributes.insert("department".into(), "RD".into());
        let iam = SystemsConfig::parse(Path::new("s.toml"), "[systems.aws]\nkind = \"aws_iam\"\n")
            .unwrap();
        let okta =
            SystemsConfig::parse(Path::new("s.toml"), "[systems.okta]\nkind = \"okta\"\n").unwrap();
        // IAM cannot hold "&": "RD" is what was written, not drift.
        assert!(attribute_drift(&p, &iam.catalog.systems["aws"], &a).is_empty());
        // Okta can: "RD" there is drift.
        let d = attribute_drift(&p, &okta.catalog.systems["okta"], &a);
        assert_eq!(d, vec!["department: target \"RD\", HR \"R&D\"".to_string()]);
        // Only what the target reported is compared.
        a.attributes.clear();
        assert!(attribute_drift(&p, &okta.catalog.systems["okta"], &a).is_empty());
    }

    #[test]
    fn work_already_in_flight_is_not_drift() {
        let mut w = world();
        w.intended
            .insert("E1".into(), vec!["okta:group:eng".into()]);
        let e = entry();
        let o = obs("complete", "done", 2);
        let classes = |w: &World| {
            classify(w, &e, &o)
                .into_iter()
                .map(|f| f.class)
                .collect::<Vec<_>>()
        };
        assert!(classes(&w).contains(&"missing") && classes(&w).contains(&"excess"));
        w.in_flight
            .insert(("E1".into(), "okta".into(), Some("okta:group:eng".into())));
        w.in_flight
            .insert(("E1".into(), "okta".into(), Some("okta:group:admins".into())));
        assert!(!classes(&w).contains(&"missing") && !classes(&w).contains(&"excess"));
    }

    #[test]
    fn leavers_come_first_and_get_no_other_findings() {
        let mut w = world();
        let mut ann = w.people["E1"].clone();
        ann.status = crate::model::EmploymentStatus::Terminated;
        w.people.insert("E1".into(), ann);
        w.intended
            .insert("E1".into(), vec!["okta:group:eng".into()]);
        let f = classify(&w, &entry(), &obs("complete", "done", 2));
        let ann: Vec<_> = f
            .iter()
            .filter(|f| f.person.as_deref() == Some("E1"))
            .collect();
        assert_eq!(ann.len(), 1, "{f:#?}");
        assert_eq!(ann[0].class, "leaver_with_access");
        assert_eq!(ann[0].severity, "critical");
        assert!(f.iter().all(|x| x.rank >= ann[0].rank));
    }
}
