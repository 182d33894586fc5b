//! `accessdesk bench plan`: plan 100,000 people × 10 systems (about 1,000,000 intended
//! grants, 2% drift) from a database file on disk, and print the time spent only reading
//! those rows from SQLite beside the total.

use super::store::synthetic_person;
use super::{BenchReport, median};
use crate::Result;
use crate::engine::plan::{Scope, compute};
use crate::model::Person;
use crate::store::Store;

pub const SYSTEMS: [&str; 10] = [
    "okta", "google", "slack", "github", "aws", "scim", "ldap", "entra", "jira", "zoom",
];

/// Build the synthetic world: every person has one intended group per system and an account
/// in each; observed memberships match except for `drift` of them (half missing, half extra).
pub fn build_world(store: &mut Store, people: usize, drift: f64) -> Result<Vec<Person>> {
    let persons: Vec<Person> = (0..people).map(synthetic_person).collect();
    let ents: Vec<String> = SYSTEMS.iter().map(|s| format!("{s}:group:all")).collect();
    let extra: Vec<String> = SYSTEMS.iter().map(|s| format!("{s}:group:stale")).collect();
    let logins: Vec<String> = persons
        .iter()
        .map(|p| format!("{}@example.com", p.hris_id))
        .collect();
    let every = (1.0 / drift.max(1e-9)).round().max(1.0) as usize;
    store.write(|tx| {
        super::store::insert_people_with_grants(tx, &persons, &ents)?;
        tx.bulk_insert_accounts(
            persons.iter().zip(&logins).flat_map(|(p, l)| {
                SYSTEMS
                    .iter()
                    .map(move |s| (*s, p.hris_id.as_str(), l.as_str(), true))
            }),
            "bench",
        )?;
        let mut n = 0usize;
        let rows = persons.iter().zip(&logins).flat_map(|(p, l)| {
            SYSTEMS
                .iter()
                .enumerate()
                .map(move |(i, s)| (i, *s, p.hris_id.as_str(), l.as_str()))
        });
        let mut observed = Vec::new();
        for (i, s, pid, login) in rows {
            n += 1;
            if n.is_multiple_of(every) {
                // Drift: half of it missing grants, half stale extra ones.
                if n.is_multiple_of(2 * every) {
                    continue;
                }
                observed.push((s, login, pid, extra[i].as_str()));
            }
            observed.push((s, login, pid, ents[i].as_str()));
        }
        tx.bulk_insert_observed(observed.into_iter(), "bench")?;
        Ok(())
    })?;
    Ok(persons)
}

pub fn run(people: usize, runs: usize) -> Result<BenchReport> {
    let dir = tempfile::tempdir().map_err(|e| crate::Error::io("creating a temp dir", e))?;
    let path = dir.path().join("bench.db");
    {
        let mut store = Store::open(&path)?;
        build_world(&mut store, people, 0.02)?;
    }
    let (mut totals, mut reads, mut diffs) = (Vec::new(), Vec::new(), Vec::new());
    let mut n_ops = 0;
    let mut rows = 0;
    for _ in 0..runs.max(1) {
        let store = Store::open(&path)?;
        let t = std::time::Instant::now();
        let (ops, _inputs, timing) = compute(
            &store,
            &Scope::default(),
            &crate::engine::plan::Settings::from_catalog(&Default::default()),
        )?;
        totals.push(t.elapsed().as_secs_f64());
        reads.push(timing.read.as_secs_f64());
        diffs.push(timing.diff.as_secs_f64());
        n_ops = ops.len();
        rows = timing.rows_read;
    }
    let mut r = BenchReport::new("plan");
    r.push(
        &format!(
            "plan {people} people x {} systems (2% drift)",
            SYSTEMS.len()
        ),
        median(&mut totals),
        "s",
        Some(1.0),
        "lower",
    );
    r.push(
        &format!("  of which reading {rows} rows from SQLite"),
        median(&mut reads),
        "s",
        None,
        "lower",
    );
    r.push(
        "  of which the diff",
        median(&mut diffs),
        "s",
        None,
        "lower",
    );
    r.push("operations planned", n_ops as f64, "ops", None, "lower");
    Ok(r)
}
