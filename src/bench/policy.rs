//! `bench policy`: evaluate a synthetic organisation against a synthetic rule set.
//!
//! The org and rules are pseudo-random but deterministic (a fixed seed), with realistic
//! shapes: department equality plus status, title prefixes, location lists, `||` of
//! departments, cost centres, start-date windows, and about one rule in five with no
//! equality conjunct at all (so the index cannot help with those). Everything runs on
//! the calling thread.
//!
//! Figures: full evaluation of everyone (median seconds over the runs, target 1 s), the
//! re-evaluation of one changed person (median µs, target 1000 µs), and the number of
//! grants produced.

use super::{BenchReport, median};
use crate::config::{Catalog, SystemsConfig};
use crate::model::{EmploymentStatus, Person};
use crate::policy::PolicySet;
use chrono::{NaiveDate, TimeZone, Utc};
use std::path::Path;
use std::time::Instant;

const DEPARTMENT_BASES: [&str; 20] = [
    "Engineering",
    "Sales",
    "Marketing",
    "Finance",
    "Legal",
    "People",
    "Support",
    "Operations",
    "Product",
    "Design",
    "Security",
    "IT",
    "Data",
    "Research",
    "Facilities",
    "Procurement",
    "Customer Success",
    "Partnerships",
    "Communications",
    "Compliance",
];
const LEVELS: [&str; 6] = ["", "Senior ", "Staff ", "Principal ", "Junior ", "Lead "];
const ROLES: [&str; 8] = [
    "Engineer",
    "Analyst",
    "Manager",
    "Designer",
    "Account Executive",
    "Specialist",
    "Director",
    "Consultant",
];
const LOCATIONS: [&str; 25] = [
    "Paris",
    "Berlin",
    "London",
    "Dublin",
    "Madrid",
    "Lisbon",
    "Amsterdam",
    "Warsaw",
    "Stockholm",
    "Zurich",
    "New York",
    "San Francisco",
    "Austin",
    "Toronto",
    "Chicago",
    "Seattle",
    "Boston",
    "Denver",
    "Tokyo",
    "Singapore",
    "Sydney",
    "Bangalore",
    "Sao Paulo",
    "Mexico City",
    "Remote",
];

/// A small deterministic generator (SplitMix64).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    fn pick<'a>(&mut self, xs: &[&'a str]) -> &'a str {
        xs[self.below(xs.len())]
    }
}

fn departments() -> Vec<String> {
    DEPARTMENT_BASES
        .iter()
        .flat_map(|b| [b.to_string(), format!("{b} Ops")])
        .collect()
}

fn slug(s: &str) -> String {
    s.to_ascii_lowercase().replace(' ', "-")
}

/// A synthetic organisation: its catalogue, policies.toml text and people.
pub struct SyntheticOrg {
    pub catalog: Catalog,
    pub policies: String,
    pub people: Vec<Person>,
}

const SYSTEMS: &str = r#"
[systems.okta]
kind = "okta"
[systems.google]
kind = "google_workspace"
[systems.slack]
kind = "slack"
[systems.aws]
kind = "aws_iam"
[systems.github]
kind = "github"
"#;

/// Build the org: `people` people and `rules` rules, always the same for the same sizes.
pub fn synthetic_org(people: usize, rules: usize) -> SyntheticOrg {
    let depts = departments();
    let dept_refs: Vec<&str> = depts.iter().map(String::as_str).collect();
    let mut rng = Rng(0x5EED_0001);
    let mut text = String::new();
    // github declares its catalogue (so grants are checked against it); the rest accept any name.
    let mut github = String::new();
    let mut github_teams = std::collections::BTreeSet::new();
    for i in 0..rules {
        let d = rng.pick(&dept_refs);
        let (when, grant, extra) = match i % 10 {
            0 => (
                format!(r#"person.department == "{d}" && person.status == "active""#),
                vec![
                    format!("okta:group:dept-{}", slug(d)),
                    format!("slack:channel:dept-{}", slug(d)),
                ],
                "",
            ),
            1 => {
                let level = rng.pick(&LEVELS[1..]);
                (
                    format!(
                        r#"person.department == "{d}" && person.title.startsWith("{}")"#,
                        level.trim_end()
                    ),
                    vec![format!(
                        "github:team:{}-{}",
                        slug(d),
                        slug(level.trim_end())
                    )],
                    "",
                )
            }
            2 => {
                let locs: Vec<String> = (0..3)
                    .map(|_| format!("{:?}", rng.pick(&LOCATIONS)))
                    .collect();
                (
                    format!(
                        r#"person.location in [{}] && person.status == "active""#,
                        locs.join(", ")
                    ),
                    vec![format!("okta:group:site-{i}")],
                    "",
                )
            }
            3 => {
                let d2 = rng.pick(&dept_refs);
                (
                    format!(r#"person.department == "{d}" || person.department == "{d2}""#),
                    vec![format!("google:group:{}-{}", slug(d), slug(d2))],
                    "",
                )
            }
            4 => {
                let level = rng.pick(&LEVELS[1..]).trim_end();
                let role = rng.pick(&ROLES);
                (
                    format!(
                        r#"person.title.startsWith("{level}") || person.title.endsWith("{role}")"#
                    ),
                    vec![format!("okta:group:{}-{}-{i}", slug(level), slug(role))],
                    "",
                )
            }
            5 => {
                let cc = 1000 + rng.below(200);
                (
                    format!(r#"person.cost_center == "CC-{cc}" && person.status != "terminated""#),
                    vec![format!("aws:role:cc-{cc}")],
                    "",
                )
            }
            6 => (
                format!(
                    r#"person.department == "{d}" && person.status == "active" && person.start_date >= "2024-01-01""#
                ),
                vec![format!("okta:group:new-{}", slug(d))],
                "duration = \"90d\"\n",
            ),
            7 => {
                let loc = rng.pick(&LOCATIONS);
                (
                    format!(
                        r#"person.department == "{d}" && (person.location == "{loc}" || person.title.contains("Lead"))"#
                    ),
                    vec![format!("github:team:{}-leads", slug(d))],
                    "requires_approval = true\nduration = \"30d\"\n",
                )
            }
            8 => (
                format!(r#"person.status == "pending" && person.department == "{d}""#),
                vec![format!("okta:group:preboard-{}", slug(d))],
                "",
            ),
            _ => {
                let n = 14 + rng.below(10);
                (
                    format!(
                        r#"size(person.title) > {n} && person.status != "terminated" && person.email.endsWith("@example.com")"#
                    ),
                    vec![format!("slack:channel:long-titles-{n}")],
                    "",
                )
            }
        };
        for g in &grant {
            if let Some(team) = g.strip_prefix("github:team:")
                && github_teams.insert(team.to_string())
            {
                let approval = if team.ends_with("-leads") {
                    "requires_approval = true\n"
                } else {
                    ""
                };
                github.push_str(&format!(
                    "[[systems.github.entitlements]]\nkind = \"team\"\nname = \"{team}\"\n{approval}"
                ));
            }
        }
        let grants: Vec<String> = grant.iter().map(|g| format!("{g:?}")).collect();
        text.push_str(&format!(
            "[[rule]]\nname = \"rule-{i}\"\nwhen = '{when}'\ngrant = [{}]\n{extra}\n",
            grants.join(", ")
        ));
    }
    let systems = format!("{SYSTEMS}{github}");
    let catalog = SystemsConfig::parse(Path::new("bench-systems.toml"), &systems)
        .map(|c| c.catalog)
        .unwrap_or_default();

    let mut rng = Rng(0x5EED_0002);
    let base = NaiveDate::from_ymd_opt(2015, 1, 1).unwrap_or_default();
    let people = (0..people)
        .map(|i| {
            let id = format!("E{i:06}");
            let mut p = Person::new(
                &id,
                "Given",
                "Family",
                &format!("{}@example.com", slug(&id)),
            );
            p.department = rng.pick(&dept_refs).to_string();
            p.title = format!("{}{}", rng.pick(&LEVELS), rng.pick(&ROLES));
            p.location = rng.pick(&LOCATIONS).to_string();
            p.cost_center = format!("CC-{}", 1000 + rng.below(200));
            p.status = match rng.below(100) {
                0..=87 => EmploymentStatus::Active,
                88..=91 => EmploymentStatus::Leave,
                92..=95 => EmploymentStatus::Pending,
                _ => EmploymentStatus::Terminated,
            };
            p.start_date = base.checked_add_days(chrono::Days::new(rng.below(3800) as u64));
            p.manager_id = Some(format!("E{:06}", rng.below(i.max(1))));
            p
        })
        .collect();
    SyntheticOrg {
        catalog,
        policies: text,
        people,
    }
}

/// Run the benchmark. See the module docs for what is measured.
pub fn run(people: usize, rules: usize, runs: usize) -> BenchReport {
    let runs = runs.max(1);
    let org = synthetic_org(people, rules);
    let mut report = BenchReport::new("policy");
    let now = Utc
        .with_ymd_and_hms(2025, 1, 1, 0, 0, 0)
        .single()
        .unwrap_or_else(Utc::now);

    let t = Instant::now();
    let policies = match PolicySet::parse(
        Path::new("bench-policies.toml"),
        &org.policies,
        &org.catalog,
    ) {
        Ok(p) => p,
        Err(e) => {
            // The generator is ours; this would be a bug in it. Report instead of panicking.
            tracing::error!("synthetic policies did not load: {e}");
            report.push(
                "synthetic policies failed to load",
                1.0,
                "error",
                None,
                "lower",
            );
            return report;
        }
    };
    report.push(
        &format!("load and check {} rules", policies.rules().len()),
        t.elapsed().as_secs_f64() * 1000.0,
        "ms",
        None,
        "lower",
    );

    let mut samples = Vec::new();
    let mut grants = 0usize;
    for _ in 0..runs {
        let t = Instant::now();
        let mut n = 0usize;
        for p in &org.people {
            n += policies.evaluate(p, now).len();
        }
        samples.push(t.elapsed().as_secs_f64());
        grants = n;
    }
    report.push(
        &format!(
            "full evaluation, {} people x {} rules",
            org.people.len(),
            policies.rules().len()
        ),
        median(&mut samples),
        "s",
        Some(1.0),
        "lower",
    );

    // One person changes department, title and location; time their re-evaluation.
    let depts = departments();
    let mut rng = Rng(0x5EED_0003);
    let mut samples = Vec::new();
    if !org.people.is_empty() {
        for _ in 0..(200 * runs).max(101) {
            let mut p = org.people[rng.below(org.people.len())].clone();
            p.department = depts[rng.below(depts.len())].clone();
            p.title = format!("{}{}", rng.pick(&LEVELS), rng.pick(&ROLES));
            p.location = rng.pick(&LOCATIONS).to_string();
            let t = Instant::now();
            let g = policies.evaluate(&p, now);
            samples.push(t.elapsed().as_secs_f64() * 1e6);
            std::hint::black_box(g);
        }
    }
    report.push(
        "re-evaluate one changed person",
        median(&mut samples),
        "µs",
        Some(1000.0),
        "lower",
    );
    report.push("grants produced", grants as f64, "grants", None, "higher");
    let (always, indexed) = policies.index_stats();
    report.push(
        "rules tested for everyone (not indexed)",
        always as f64,
        "rules",
        None,
        "lower",
    );
    report.push(
        "rules reached through the index",
        indexed as f64,
        "rules",
        None,
        "higher",
    );
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_run_has_the_expected_figures() {
        let r = run(1000, 50, 1);
        assert_eq!(r.bench, "policy");
        let names: Vec<&str> = r.results.iter().map(|x| x.name.as_str()).collect();
        assert_eq!(
            names,
            vec![
                "load and check 50 rules",
                "full evaluation, 1000 people x 50 rules",
                "re-evaluate one changed person",
                "grants produced",
                "rules tested for everyone (not indexed)",
                "rules reached through the index",
            ]
        );
        assert_eq!(r.results[1].target, Some(1.0));
        assert_eq!(r.results[1].unit, "s");
        assert_eq!(r.results[2].target, Some(1000.0));
        assert!(
            r.results
                .iter()
                .all(|x| x.value.is_finite() && x.value >= 0.0)
        );

        // The grant count equals an independent count: explain's slow evaluator, which
        // tests every rule for every person without the index.
        let org = synthetic_org(1000, 50);
        let ps = PolicySet::parse(Path::new("p.toml"), &org.policies, &org.catalog).unwrap();
        let expected: usize = org
            .people
            .iter()
            .map(|p| ps.explain(p).entitlements.len())
            .sum();
        assert!(
            expected > 1000,
            "the org should produce plenty of grants: {expected}"
        );
        assert_eq!(r.results[3].value, expected as f64);
        // 1 rule in 10 of shape 4 and 1 in 10 of shape 9 has no equality conjunct.
        assert_eq!(r.results[4].value, 10.0);
        assert_eq!(r.results[5].value, 40.0);
        let json = serde_json::to_value(&r).unwrap();
        assert_eq!(json["results"][1]["better"], "lower");
    }

    #[test]
    fn the_org_is_deterministic() {
        let a = synthetic_org(50, 20);
        let b = synthetic_org(50, 20);
        assert_eq!(a.people, b.people);
        assert_eq!(a.policies, b.policies);
    }
}
