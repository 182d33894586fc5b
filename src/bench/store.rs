//! `accessdesk bench store`: write 100,000 people and 1,000,000 intended grants to a
//! database file on disk, then read the grants back as the plan's diff would.

use super::{BenchReport, median};
use crate::Result;
use crate::model::{EmploymentStatus, Person};
use crate::store::Store;
use crate::store::grants::BulkGrant;
use std::time::Instant;

pub const DEPARTMENTS: &[&str] = &[
    "Engineering",
    "Sales",
    "Marketing",
    "Finance",
    "Support",
    "People",
    "Legal",
    "Design",
    "Data",
    "IT",
];

/// A deterministic synthetic person.
/// Write `persons`, each with the same intended grants `ents` (`system:kind:name`), in `tx`.
pub fn insert_people_with_grants<E: AsRef<str>>(
    tx: &mut crate::store::Tx<'_>,
    persons: &[Person],
    ents: &[E],
) -> Result<()> {
    tx.bulk_insert_people(persons, "bench")?;
    tx.bulk_insert_intended(
        persons.iter().flat_map(|p| {
            ents.iter().map(move |e| BulkGrant {
                person_id: &p.hris_id,
                entitlement: e.as_ref(),
                rule: "bench",
                requires_approval: false,
                expires_at: None,
            })
        }),
        "bench",
    )?;
    Ok(())
}

pub fn synthetic_person(i: usize) -> Person {
    let mut p = Person::new(
        &format!("E{i:06}"),
        &format!("Given{i}"),
        &format!("Family{}", i % 9973),
        &format!("p{i}@example.com"),
    );
    p.department = DEPARTMENTS[i % DEPARTMENTS.len()].to_string();
    p.title = format!("Title {}", i % 37);
    p.location = ["London", "Berlin", "NYC", "Remote"][i % 4].to_string();
    p.cost_center = format!("CC{}", i % 50);
    p.status = if i.is_multiple_of(50) {
        EmploymentStatus::Leave
    } else {
        EmploymentStatus::Active
    };
    p
}

pub fn run(people: usize, grants_per_person: usize, runs: usize) -> Result<BenchReport> {
    let mut write_people = Vec::new();
    let mut write_grants = Vec::new();
    let mut read = Vec::new();
    let mut rows_read = 0;
    let persons: Vec<Person> = (0..people).map(synthetic_person).collect();
    let systems = [
        "okta", "google", "slack", "github", "aws", "scim", "ldap", "entra", "jira", "zoom",
    ];
    for _ in 0..runs.max(1) {
        let dir = tempfile::tempdir().map_err(|e| crate::Error::io("creating a temp dir", e))?;
        let mut store = Store::open(&dir.path().join("bench.db"))?;
        let t = Instant::now();
        store.write(|tx| tx.bulk_insert_people(&persons, "bench"))?;
        write_people.push(t.elapsed().as_secs_f64());

        let t = Instant::now();
        let ents: Vec<String> = (0..grants_per_person)
            .map(|g| format!("{}:group:g{g}", systems[g % systems.len()]))
            .collect();
        store.write(|tx| {
            let iter = persons.iter().flat_map(|p| {
                ents.iter().map(move |e| BulkGrant {
                    person_id: &p.hris_id,
                    entitlement: e,
                    rule: "bench-rule",
                    requires_approval: false,
                    expires_at: None,
                })
            });
            tx.bulk_insert_intended(iter, "bench")
        })?;
        write_grants.push(t.elapsed().as_secs_f64());

        // Read back as the diff does, from a fresh connection (cold statement cache).
        drop(store);
        let store = Store::open(&dir.path().join("bench.db"))?;
        let t = Instant::now();
        let rows = store.all_intended()?;
        read.push(t.elapsed().as_secs_f64());
        rows_read = rows.len();
    }
    let mut r = BenchReport::new("store");
    let (wp, wg) = (median(&mut write_people), median(&mut write_grants));
    r.push(&format!("write {people} people"), wp, "s", None, "lower");
    r.push(
        &format!("write {} intended grants", people * grants_per_person),
        wg,
        "s",
        None,
        "lower",
    );
    r.push("write people + grants", wp + wg, "s", Some(5.0), "lower");
    r.push(
        &format!("read {rows_read} grants back for a diff"),
        median(&mut read),
        "s",
        Some(0.5),
        "lower",
    );
    Ok(r)
}
