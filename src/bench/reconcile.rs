//! `accessdesk bench reconcile`: correlating and classifying stored observations.
//!
//! 100,000 people × 10 systems (each an account per person with two intended groups),
//! observed with 2% drift of every class in every system: missing and excess
//! memberships, orphans, leavers still active, attribute drift, unmanaged groups, and
//! accounts whose HR id contradicts accessdesk's link (ambiguous). The figure is the time
//! to load the stored run, correlate every account and classify it (`classify_run`);
//! every run checks the counts of each class.

use super::{BenchReport, median};
use crate::config::SystemsConfig;
use crate::store::Store;
use crate::store::reconcile::{Checkpoint, ObservedAccount};
use crate::{Error, Result};
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

const SYSTEMS: usize = 10;
/// One in this many people (per class, per system) drifts: 2%.
const DRIFT_EVERY: usize = 50;

fn catalog() -> Result<SystemsConfig> {
    let mut text = String::new();
    for s in 0..SYSTEMS {
        text.push_str(&format!(
            "[systems.s{s}]\nkind = \"okta\"\nbase_url = \"http://127.0.0.1:9\"\n"
        ));
        for (g, risk) in [
            ("all", "low"),
            ("eng", "medium"),
            ("sales", "low"),
            ("admins", "privileged"),
        ] {
            text.push_str(&format!(
                "[[systems.s{s}.entitlements]]\nkind = \"group\"\nname = \"{g}\"\nrisk = \"{risk}\"\n"
            ));
        }
    }
    SystemsConfig::parse(Path::new("bench-systems.toml"), &text)
}

/// Drift class of person `i` (the same people drift in every system).
fn drift(i: usize) -> Option<usize> {
    (i % DRIFT_EVERY < 7).then_some(i % DRIFT_EVERY)
}

/// Seed people, intended grants, and one complete stored run with the drift.
fn seed(store: &mut Store, people: usize) -> Result<i64> {
    let persons: Vec<crate::model::Person> = (0..people)
        .map(|i| {
            let mut p = super::store::synthetic_person(i);
            p.status = if drift(i) == Some(3) {
                crate::model::EmploymentStatus::Terminated
            } else {
                crate::model::EmploymentStatus::Active
            };
            p
        })
        .collect();
    let systems: Vec<String> = (0..SYSTEMS).map(|s| format!("s{s}")).collect();
    store.write(|tx| {
        tx.bulk_insert_people(&persons, "bench")?;
        let grants: Vec<(String, String)> = persons
            .iter()
            .enumerate()
            .flat_map(|(i, p)| {
                let team = if i % 2 == 0 { "eng" } else { "sales" };
                systems.iter().flat_map(move |s| {
                    [
                        (p.hris_id.clone(), format!("{s}:group:all")),
                        (p.hris_id.clone(), format!("{s}:group:{team}")),
                    ]
                })
            })
            .collect();
        tx.bulk_insert_intended(
            grants.iter().map(|(p, e)| crate::store::grants::BulkGrant {
                person_id: p,
                entitlement: e,
                rule: "bench",
                requires_approval: false,
                expires_at: None,
            }),
            "bench",
        )?;
        let run = tx.start_run(None, &systems, "bench")?;
        for s in &systems {
            let mut accounts = Vec::with_capacity(people + people / DRIFT_EVERY);
            let mut members = Vec::with_capacity(people * 2);
            for (i, p) in persons.iter().enumerate() {
                let d = drift(i);
                let id = format!("{s}-{i}");
                let mut attributes = BTreeMap::new();
                attributes.insert(
                    "department".to_string(),
                    if d == Some(4) { "Elsewhere".to_string() } else { p.department.clone() },
                );
                attributes.insert("title".to_string(), p.title.clone());
                accounts.push(ObservedAccount {
                    external_id: id.clone(),
                    login: p.email.clone(),
                    email: Some(p.email.clone()),
                    active: true,
                    // Ambiguous: carries the next person's HR id while linked to this one.
                    hris_id: Some(if d == Some(6) { persons[(i + 1) % people].hris_id.clone() } else { p.hris_id.clone() }),
                    attributes,
                    late: false,
                });
                let team = if i % 2 == 0 { "eng" } else { "sales" };
                if d != Some(0) {
                    members.push((format!("{s}:group:all"), id.clone())); // 0: missing
                }
                members.push((format!("{s}:group:{team}"), id.clone()));
                if d == Some(1) {
                    members.push((format!("{s}:group:admins"), id.clone())); // excess
                }
                if d == Some(5) {
                    members.push((format!("{s}:group:hand-made"), id.clone())); // unmanaged
                }
                if d == Some(2) {
                    accounts.push(ObservedAccount {
                        external_id: format!("{s}-orphan-{i}"),
                        login: format!("svc-{i}@example.net"),
                        email: None,
                        active: true,
                        hris_id: None,
                        attributes: BTreeMap::new(),
                        late: false,
                    });
                }
                if d == Some(6) {
                    tx.conn().execute(
                        "INSERT INTO accounts (system, person_id, login, external_id, active) VALUES (?1, ?2, ?3, ?4, 1)",
                        rusqlite::params![s, p.hris_id, p.email, id],
                    )?;
                }
            }
            let mut groups: Vec<(String, String, bool)> = ["all", "eng", "sales", "admins"]
                .iter()
                .map(|g| (format!("{s}:group:{g}"), g.to_string(), true))
                .collect();
            groups.push((format!("{s}:group:hand-made"), "hand-made".into(), false));
            let cp = Checkpoint {
                system: s.clone(),
                status: "complete".into(),
                phase: "done".into(),
                ent_index: groups.len() as i64,
                cursor: None,
                accounts: accounts.len() as i64,
                memberships: members.len() as i64,
                pages: 0,
                all_groups: true,
                started_at: crate::store::queue::ts(tx.now),
                observed_at: Some(crate::store::queue::ts(tx.now)),
                error: None,
            };
            tx.save_page(run, &cp, &accounts, &groups, &members)?;
        }
        tx.finish_run(run, "bench")?;
        Ok(run)
    })
}

/// User + system CPU time this process has used, in seconds (every thread).
fn cpu_secs() -> f64 {
    // SAFETY: getrusage only writes the struct it is given.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) } != 0 {
        return f64::NAN;
    }
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    tv(u.ru_utime) + tv(u.ru_stime)
}

pub fn run(people: usize, runs: usize) -> Result<BenchReport> {
    let cfg = catalog()?;
    let dir = tempfile::tempdir().map_err(|e| Error::io("temp dir", e))?;
    let mut store = Store::open(&dir.path().join("reconcile.db"))?;
    eprintln!(
        "bench reconcile: seeding {people} people × {SYSTEMS} systems with 2% drift of every class"
    );
    let run = seed(&mut store, people)?;
    // As `reconcile_run` reads: through the page cache, not a memory map.
    store.set_read_mode(crate::store::ReadMode::Paged)?;
    let mut secs = Vec::new();
    let mut counts: BTreeMap<&'static str, usize> = BTreeMap::new();
    let mut accounts = 0;
    let mut cpu = Vec::new();
    for _ in 0..runs.max(1) {
        let t = Instant::now();
        let cpu0 = cpu_secs();
        let c = crate::engine::reconcile::classify_run(&store, &cfg.catalog, run)?;
        secs.push(t.elapsed().as_secs_f64());
        cpu.push(cpu_secs() - cpu0);
        counts.clear();
        for f in &c.findings {
            *counts.entry(f.class).or_default() += 1;
        }
        accounts = c.systems.iter().map(|s| s.accounts as usize).sum::<usize>();
    }
    // Every class is there, in the expected numbers per system.
    let per = people.div_ceil(DRIFT_EVERY) * SYSTEMS;
    for class in [
        "missing",
        "excess",
        "orphan",
        "leaver_with_access",
        "attribute_drift",
        "unmanaged",
        "ambiguous",
    ] {
        let n = counts.get(class).copied().unwrap_or(0);
        if n < per {
            return Err(Error::Failed(format!(
                "bench reconcile: expected at least {per} {class} findings, found {n} ({counts:?})"
            )));
        }
    }
    // Where the time goes (one more pass, phase by phase).
    let t = Instant::now();
    let world = crate::engine::reconcile::World::load(&store, chrono::Utc::now())?;
    let load_world = t.elapsed().as_secs_f64();
    let t = Instant::now();
    for cp in store.checkpoints(run)? {
        let groups = crate::store::reconcile::observed_groups_in(store.conn(), run, &cp.system)?;
        crate::store::reconcile::for_each_observed_account(
            store.conn(),
            run,
            &cp.system,
            &groups,
            |a, held| {
                std::hint::black_box((a, held));
                Ok(())
            },
        )?;
    }
    let read_secs = t.elapsed().as_secs_f64();
    let t = Instant::now();
    for cp in store.checkpoints(run)? {
        let e = &cfg.catalog.systems[&cp.system];
        std::hint::black_box(crate::engine::reconcile::classify_system(
            store.conn(),
            &world,
            e,
            run,
            &cp,
        )?);
    }
    let classify_secs = t.elapsed().as_secs_f64();
    let mut r = BenchReport::new("reconcile");
    let n = secs.len();
    r.push(
        &format!(
            "correlate + classify: {people} people × {SYSTEMS} systems, {accounts} accounts (median of {n})"
        ),
        median(&mut secs),
        "s",
        Some(1.0),
        "lower",
    );
    r.push(
        "  CPU time, all threads (median)",
        median(&mut cpu),
        "s",
        None,
        "lower",
    );
    r.push(
        "  findings (2% drift of every class)",
        counts.values().sum::<usize>() as f64,
        "findings",
        None,
        "lower",
    );
    r.push(
        "  of which: loading people, grants and links (serial)",
        load_world,
        "s",
        None,
        "lower",
    );
    r.push(
        "  of which: reading the stored accounts and memberships (packed; serial)",
        read_secs,
        "s",
        None,
        "lower",
    );
    r.push(
        "  of which: reading, correlating and classifying (serial)",
        classify_secs,
        "s",
        None,
        "lower",
    );
    Ok(r)
}
