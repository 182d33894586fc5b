//! Policy engine: birthright rules with CEL conditions, turned into intended grants.
//!
//! # policies.toml
//!
//! ```toml
//! # Optional: custom HR attributes conditions may read, with their type
//! # (string | int | bool | date). They are read from the person's custom fields.
//! [attributes]
//! clearance = "string"
//!
//! [[rule]]
//! name = "engineering-birthright"          # unique; recorded on every grant it produces
//! description = "Everyone in Engineering"  # optional
//! when = 'person.department == "Engineering" && person.status == "active"'
//! grant = ["okta:group:engineering", "github:team:eng"]
//! requires_approval = false                # optional (default false)
//! duration = "90d"                         # optional time bound: Nh, Nd or Nw
//! ```
//!
//! # Conditions
//!
//! `when` is a CEL expression over `person`. Attributes: `person.hris_id`, `given_name`,
//! `family_name`, `preferred_name`, `display_name`, `email`, `department`, `title`,
//! `manager_id`, `location`, `cost_center`, `status` (strings; status is one of
//! `pending`, `active`, `leave`, `terminated`), `start_date`, `end_date` (dates), and
//! `person.custom.NAME` for attributes declared under `[attributes]`. An absent optional
//! string reads as `""`; an absent date as `""`, which sorts before every date (so test
//! `person.end_date != ""` before comparing it); see [`schema`] for custom values.
//!
//! Supported: `&&`, `||`, `!`, `==`, `!=`, `<`, `<=`, `>`, `>=`, `x in [..]` with a list
//! literal, `c ? a : b`, `s.startsWith(t)`, `s.endsWith(t)`, `s.contains(t)`,
//! `s.matches("regex")` (literal pattern), `size(s)`, parentheses, and string, int and
//! bool literals. Dates compare with `"YYYY-MM-DD"` literals. Everything is type-checked
//! at load; anything else is rejected with a message saying so.
//!
//! # Evaluation
//!
//! Conditions are parsed with the cel crate, checked ([`check`]) and compiled into a fast
//! evaluator with a rule index ([`compile`]). When several matching rules grant the same
//! entitlement, one grant is kept: the one that needs no approval, then the one with the
//! longest time bound (none is longest), then the first rule in file order. The grant
//! needs approval if its rule says so or its catalogue entry does; it expires at
//! `now + duration`.

pub mod check;
pub mod compile;
#[cfg(test)]
mod differential;
pub mod explain;
pub mod golden;
pub mod load;
pub mod schema;

use crate::config::{Catalog, ImportMapping, SystemsConfig};
use crate::model::{EntitlementRef, Grant, Person};
use crate::store::Store;
use crate::{Error, Result};
use chrono::{DateTime, TimeDelta, Utc};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub use explain::Explanation;

/// One rule from policies.toml.
#[derive(Debug, Clone)]
pub struct Rule {
    pub name: String,
    pub description: Option<String>,
    /// The condition as written.
    pub when: String,
    pub grants: Vec<EntitlementRef>,
    /// The rule's own flag; a grant also needs approval if its catalogue entry says so.
    pub requires_approval: bool,
    pub duration: Option<TimeDelta>,
    /// The duration as written, e.g. `90d`.
    pub duration_text: Option<String>,
    /// 1-based line of the rule's `name` in policies.toml.
    pub line: usize,
    pub(crate) condition: check::TExpr,
    /// Indices into `PolicySet::entitlements`.
    grant_ids: Vec<u32>,
}

/// An entitlement some rule grants, with its catalogue approval flag.
#[derive(Debug, Clone)]
struct EntitlementInfo {
    reference: EntitlementRef,
    catalogue_approval: bool,
}

/// The loaded, checked and compiled policies.
#[derive(Debug, Clone, Default)]
pub struct PolicySet {
    path: PathBuf,
    schema: schema::Schema,
    rules: Vec<Rule>,
    /// Sorted by reference, so grants come out sorted.
    entitlements: Vec<EntitlementInfo>,
    /// Per rule: its preference when several rules grant one entitlement (lower wins).
    rank: Vec<u32>,
    engine: compile::Engine,
}

impl PolicySet {
    /// Read policies.toml and check it against systems.toml: its catalogue, and its HR
    /// column mapping (conditions may name fields by the export's column names).
    pub fn load(path: &Path, systems: &SystemsConfig) -> Result<PolicySet> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                Error::usage(
                    format!("{} does not exist", path.display()),
                    "run `accessdesk init` to write a starter policies.toml, or create it",
                )
            } else {
                Error::io(format!("reading {}", path.display()), e)
            }
        })?;
        Self::parse_mapped(path, &text, &systems.catalog, &systems.import)
    }

    /// [`PolicySet::parse_mapped`] with the default column mapping (the HR export's
    /// headers are the import field names).
    pub fn parse(path: &Path, text: &str, catalog: &Catalog) -> Result<PolicySet> {
        Self::parse_mapped(path, text, catalog, &ImportMapping::default())
    }

    /// Parse, check every rule against the catalogue (conditions may name a field by its
    /// column in `columns` too), and compile. All problems are reported together as
    /// [`Error::Input`].
    pub fn parse_mapped(
        path: &Path,
        text: &str,
        catalog: &Catalog,
        columns: &ImportMapping,
    ) -> Result<PolicySet> {
        let (schema, loaded) = load::parse(path, text, catalog, columns)?;
        let mut refs: BTreeMap<EntitlementRef, bool> = BTreeMap::new();
        for r in &loaded {
            for g in &r.grants {
                let approval = catalog
                    .entitlement(&g.system, g.kind, &g.name)
                    .is_some_and(|e| e.requires_approval);
                refs.insert(g.clone(), approval);
            }
        }
        let entitlements: Vec<EntitlementInfo> = refs
            .into_iter()
            .map(|(reference, catalogue_approval)| EntitlementInfo {
                reference,
                catalogue_approval,
            })
            .collect();
        let id_of = |e: &EntitlementRef| {
            entitlements
                .binary_search_by(|x| x.reference.cmp(e))
                .map_or(0, |i| i as u32)
        };
        let rules: Vec<Rule> = loaded
            .into_iter()
            .map(|r| Rule {
                grant_ids: r.grants.iter().map(id_of).collect(),
                name: r.name,
                description: r.description,
                when: r.when,
                grants: r.grants,
                requires_approval: r.requires_approval,
                duration: r.duration.as_ref().map(|d| d.0),
                duration_text: r.duration.map(|d| d.1),
                line: r.line,
                condition: r.condition,
            })
            .collect();
        // Preference: no approval first, then the longest time bound (none is longest),
        // then file order.
        let mut order: Vec<usize> = (0..rules.len()).collect();
        order.sort_by_key(|&i| {
            let r = &rules[i];
            (
                r.requires_approval,
                std::cmp::Reverse(r.duration.unwrap_or(TimeDelta::MAX)),
                i,
            )
        });
        let mut rank = vec![0u32; rules.len()];
        for (pos, &i) in order.iter().enumerate() {
            rank[i] = pos as u32;
        }
        let conds: Vec<&check::TExpr> = rules.iter().map(|r| &r.condition).collect();
        let engine = compile::Engine::build(&schema, &conds);
        Ok(PolicySet {
            path: path.to_path_buf(),
            schema,
            rules,
            entitlements,
            rank,
            engine,
        })
    }

    /// The file the policies came from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// Every entitlement some rule grants, sorted.
    pub fn entitlements(&self) -> impl Iterator<Item = &EntitlementRef> {
        self.entitlements.iter().map(|e| &e.reference)
    }

    pub(crate) fn schema(&self) -> &schema::Schema {
        &self.schema
    }

    /// (rules tested for everyone, rules reached through the index).
    pub fn index_stats(&self) -> (usize, usize) {
        self.engine.index_stats()
    }

    /// The rules whose condition holds for `person`, in file order.
    pub fn matching_rules(&self, person: &Person) -> Vec<&Rule> {
        let rec = self.engine.record(&self.schema, person);
        let mut matched = Vec::new();
        self.engine.matching(&rec, &mut matched);
        matched.iter().map(|&i| &self.rules[i as usize]).collect()
    }

    /// The grants `person` should hold, one per entitlement, sorted by entitlement.
    pub fn evaluate(&self, person: &Person, now: DateTime<Utc>) -> Vec<Grant> {
        let mut scratch = Scratch::default();
        let mut out = Vec::new();
        self.evaluate_into(person, now, &mut scratch, &mut out);
        out
    }

    /// Evaluate everyone; grants are appended person by person (each sorted by
    /// entitlement). Reuses its buffers across people.
    pub fn evaluate_all(&self, people: &[Person], now: DateTime<Utc>) -> Vec<Grant> {
        let mut scratch = Scratch::default();
        let mut out = Vec::new();
        for p in people {
            self.evaluate_into(p, now, &mut scratch, &mut out);
        }
        out
    }

    fn evaluate_into(
        &self,
        person: &Person,
        now: DateTime<Utc>,
        scratch: &mut Scratch,
        out: &mut Vec<Grant>,
    ) {
        let rec = self.engine.record(&self.schema, person);
        self.engine.matching(&rec, &mut scratch.matched);
        self.winners(&scratch.matched, &mut scratch.pairs);
        out.extend(
            scratch
                .pairs
                .iter()
                .map(|&(ent, _, rule)| self.make_grant(person, ent as usize, rule as usize, now)),
        );
    }

    /// For matched rules (ascending), the winning (entitlement, rank, rule) per entitlement,
    /// sorted by entitlement.
    fn winners(&self, matched: &[u32], pairs: &mut Vec<(u32, u32, u32)>) {
        pairs.clear();
        for &ri in matched {
            let rank = self.rank[ri as usize];
            for &ent in &self.rules[ri as usize].grant_ids {
                pairs.push((ent, rank, ri));
            }
        }
        pairs.sort_unstable();
        pairs.dedup_by_key(|p| p.0);
    }

    fn make_grant(&self, person: &Person, ent: usize, rule: usize, now: DateTime<Utc>) -> Grant {
        let r = &self.rules[rule];
        let e = &self.entitlements[ent];
        Grant {
            person_id: person.hris_id.clone(),
            entitlement: e.reference.clone(),
            rule: r.name.clone(),
            requires_approval: r.requires_approval || e.catalogue_approval,
            expires_at: r.duration.map(|d| {
                now.checked_add_signed(d)
                    .unwrap_or(DateTime::<Utc>::MAX_UTC)
            }),
        }
    }

    /// What a grant from `rule` to `person` rests on: the rule's condition and the values
    /// of the person attributes it reads, hashed. A rejected approval stays rejected while
    /// this stays the same (a change of the rule, or of an attribute it reads, reopens it).
    pub fn grant_inputs(&self, rule: &str, person: &Person) -> Option<String> {
        use sha2::{Digest, Sha256};
        let r = self.rules.iter().find(|r| r.name == rule)?;
        let mut ids = std::collections::BTreeSet::new();
        attrs_of(&r.condition, &mut ids);
        let mut h = Sha256::new();
        h.update(r.name.as_bytes());
        h.update([0]);
        h.update(r.when.as_bytes());
        for id in ids {
            h.update([0]);
            h.update(self.schema.field(id).path.as_bytes());
            h.update(b"=");
            h.update(self.schema.value(id, person).to_string().as_bytes());
        }
        Some(hex::encode(&h.finalize()[..16]))
    }

    /// Why `person` gets what they get, and why the other rules did not match.
    /// Uses the slow, tree-walking evaluator so that it can report values.
    pub fn explain(&self, person: &Person) -> Explanation {
        explain::explain(self, person)
    }
}

/// The attributes a condition reads.
fn attrs_of(e: &check::TExpr, out: &mut std::collections::BTreeSet<usize>) {
    use check::TExpr::*;
    match e {
        Attr(id, _) => {
            out.insert(*id);
        }
        Bool(_) | Int(_) | Str(_) | Date(_) => {}
        List(v) | And(v) | Or(v) => v.iter().for_each(|x| attrs_of(x, out)),
        Not(x) | Size(x) | Matches(x, _) => attrs_of(x, out),
        Cmp(_, a, b) | StrFn(_, a, b) => {
            attrs_of(a, out);
            attrs_of(b, out);
        }
        In(a, v) => {
            attrs_of(a, out);
            v.iter().for_each(|x| attrs_of(x, out));
        }
        Cond(a, b, c) => {
            attrs_of(a, out);
            attrs_of(b, out);
            attrs_of(c, out);
        }
    }
}

/// Buffers reused across evaluations.
#[derive(Debug, Default)]
struct Scratch {
    matched: Vec<u32>,
    pairs: Vec<(u32, u32, u32)>,
}

/// Evaluate one person and store the result as their intended grants, in one transaction.
/// Returns (added, removed).
pub fn recompute_person(
    store: &mut Store,
    policies: &PolicySet,
    person: &Person,
    actor: &str,
    now: DateTime<Utc>,
) -> Result<(usize, usize)> {
    let grants = policies.evaluate(person, now);
    store.write(|tx| {
        let n = tx.replace_intended_grants(&person.hris_id, &grants, actor)?;
        tx.set_grant_inputs(policies, person, &grants)?;
        Ok(n)
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::config::SystemsConfig;
    use chrono::TimeZone;

    pub const SYSTEMS: &str = r#"
[systems.okta]
kind = "okta"

[[systems.okta.entitlements]]
kind = "group"
name = "engineering"

[[systems.okta.entitlements]]
kind = "group"
name = "everyone"

[[systems.okta.entitlements]]
kind = "group"
name = "sales"

[systems.github]
kind = "github"

[[systems.github.entitlements]]
kind = "team"
name = "eng"

[[systems.github.entitlements]]
kind = "team"
name = "admins"
requires_approval = true

[systems.slack]
kind = "slack"
"#;

    pub fn catalog() -> Catalog {
        SystemsConfig::parse(Path::new("systems.toml"), SYSTEMS)
            .unwrap()
            .catalog
    }

    pub fn parse(text: &str) -> Result<PolicySet> {
        PolicySet::parse(Path::new("policies.toml"), text, &catalog())
    }

    pub fn err_text(text: &str) -> String {
        match parse(text) {
            Err(e) => e.to_string(),
            Ok(_) => panic!("expected an error for:\n{text}"),
        }
    }

    pub fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2025, 3, 1, 12, 0, 0).unwrap()
    }

    pub fn person(id: &str, dept: &str, title: &str) -> Person {
        let mut p = Person::new(id, "Ada", "Lovelace", &format!("{id}@example.com"));
        p.department = dept.into();
        p.title = title.into();
        p
    }

    pub const POLICIES: &str = r#"
[attributes]
clearance = "string"

[[rule]]
name = "everyone"
when = 'person.status == "active"'
grant = ["okta:group:everyone", "slack:channel:general"]

[[rule]]
name = "engineering"
when = 'person.department == "Engineering" && person.status == "active"'
grant = ["okta:group:engineering", "github:team:eng"]

[[rule]]
name = "eng-admins"
when = 'person.department == "Engineering" && person.title.startsWith("Staff")'
grant = ["github:team:admins"]
duration = "90d"

[[rule]]
name = "contractors-temp"
when = 'person.department == "Engineering" && person.custom.clearance == "contractor"'
grant = ["github:team:eng"]
duration = "30d"
requires_approval = true

[[rule]]
name = "sales"
when = 'person.department in ["Sales", "Sales Ops"] || person.title.endsWith("Account Executive")'
grant = ["okta:group:sales"]
"#;

    fn ents(gs: &[Grant]) -> Vec<String> {
        gs.iter().map(|g| g.entitlement.to_string()).collect()
    }

    #[test]
    fn rules_match_people() {
        let ps = parse(POLICIES).unwrap();
        assert_eq!(ps.rules().len(), 5);
        let eng = person("E1", "Engineering", "Engineer");
        assert_eq!(
            ents(&ps.evaluate(&eng, now())),
            vec![
                "github:team:eng",
                "okta:group:engineering",
                "okta:group:everyone",
                "slack:channel:general"
            ]
        );
        let sales = person("E2", "Sales Ops", "Rep");
        assert_eq!(
            ents(&ps.evaluate(&sales, now())),
            vec![
                "okta:group:everyone",
                "okta:group:sales",
                "slack:channel:general"
            ]
        );
        let ae = person("E3", "Marketing", "Senior Account Executive");
        assert!(ents(&ps.evaluate(&ae, now())).contains(&"okta:group:sales".to_string()));
        let mut gone = person("E4", "Engineering", "Engineer");
        gone.status = crate::model::EmploymentStatus::Terminated;
        assert!(ps.evaluate(&gone, now()).is_empty());
        // Provenance is recorded.
        let g = ps.evaluate(&eng, now());
        assert_eq!(g[0].rule, "engineering");
        assert_eq!(g[0].person_id, "E1");
    }

    #[test]
    fn approval_and_duration() {
        let ps = parse(POLICIES).unwrap();
        let staff = person("E1", "Engineering", "Staff Engineer");
        let g = ps.evaluate(&staff, now());
        let admins = g
            .iter()
            .find(|g| g.entitlement.to_string() == "github:team:admins")
            .unwrap();
        // The catalogue says admins needs approval; the rule bounds it to 90 days.
        assert!(admins.requires_approval);
        assert_eq!(admins.expires_at, Some(now() + TimeDelta::days(90)));
        assert_eq!(admins.rule, "eng-admins");
        let everyone = g
            .iter()
            .find(|g| g.entitlement.to_string() == "okta:group:everyone")
            .unwrap();
        assert!(!everyone.requires_approval);
        assert_eq!(everyone.expires_at, None);
    }

    #[test]
    fn overlapping_rules_keep_the_most_permissive_grant() {
        let ps = parse(POLICIES).unwrap();
        // An active contractor matches both "engineering" (permanent) and
        // "contractors-temp" (30 days, approval) for github:team:eng.
        let mut c = person("E1", "Engineering", "Engineer");
        c.custom.insert("clearance".into(), "contractor".into());
        let g = ps.evaluate(&c, now());
        let eng: Vec<&Grant> = g
            .iter()
            .filter(|g| g.entitlement.to_string() == "github:team:eng")
            .collect();
        assert_eq!(eng.len(), 1, "deduplicated per entitlement");
        assert_eq!(eng[0].rule, "engineering");
        assert!(!eng[0].requires_approval);
        assert_eq!(eng[0].expires_at, None);
        // On leave: only the temporary rule applies.
        c.status = crate::model::EmploymentStatus::Leave;
        let g = ps.evaluate(&c, now());
        assert_eq!(ents(&g), vec!["github:team:eng"]);
        assert_eq!(g[0].rule, "contractors-temp");
        assert!(g[0].requires_approval);
        assert_eq!(g[0].expires_at, Some(now() + TimeDelta::days(30)));
    }

    #[test]
    fn unknown_attribute_is_located_inside_the_condition() {
        let text = "[[rule]]\nname = \"r\"\nwhen = 'person.status == \"active\" && person.departmnt == \"x\"'\ngrant = [\"okta:group:everyone\"]\n";
        let e = err_text(text);
        assert_eq!(
            e,
            "policies.toml:3:38: rule[0].when: unknown attribute person.departmnt; did you mean person.department? \
             (hint: person attributes are hris_id, given_name, family_name, preferred_name, display_name, email, \
             department, title, manager_id, location, cost_center, status, start_date, end_date, and custom.NAME \
             for attributes declared under [attributes]; the HR export's names work too: employee_id, \
             first_name, last_name)"
        );
    }

    /// Rules may name a field by the HR export's own column (systems.toml's
    /// [import.columns]) or by its import field name; a misspelt one is refused at load
    /// time, located, with a "did you mean".
    #[test]
    fn conditions_may_use_the_hr_exports_column_names() {
        let dir = tempfile::tempdir().unwrap();
        let systems = SystemsConfig::parse(
            Path::new("systems.toml"),
            &format!(
                "{SYSTEMS}\n[import.columns]\nemployee_id = \"Emp ID\"\ndepartment = \"dept\"\n\
                 first_name = \"First\"\nlast_name = \"Last\"\nemail = \"email\"\n\
                 \"custom.clearance\" = \"Clearance\"\n"
            ),
        )
        .unwrap();
        let path = dir.path().join("policies.toml");
        std::fs::write(
            &path,
            "[attributes]\nclearance = \"string\"\n\
             [[rule]]\nname = \"sales\"\nwhen = 'person.dept == \"Sales\" && person.employee_id != \"\"'\n\
             grant = [\"okta:group:sales\"]\n\
             [[rule]]\nname = \"cleared\"\nwhen = 'person.Clearance == \"high\" && person.First == \"Ada\"'\n\
             grant = [\"okta:group:engineering\"]\n",
        )
        .unwrap();
        let ps = PolicySet::load(&path, &systems).unwrap();
        let mut p = Person::new("E1", "Ada", "L", "ada@x.io");
        p.department = "Sales".into();
        p.custom.insert("clearance".into(), "high".into());
        let ents = |p: &Person| -> Vec<String> {
            ps.evaluate(p, now())
                .iter()
                .map(|g| g.entitlement.to_string())
                .collect()
        };
        assert_eq!(ents(&p), vec!["okta:group:engineering", "okta:group:sales"]);
        p.department = "Engineering".into();
        p.given_name = "Bo".into();
        assert!(ents(&p).is_empty());

        std::fs::write(
            &path,
            "[[rule]]\nname = \"r\"\nwhen = 'person.departmnt == \"Sales\"'\ngrant = [\"okta:group:sales\"]\n\
             [[rule]]\nname = \"s\"\nwhen = 'person.dpet == \"Sales\"'\ngrant = [\"okta:group:sales\"]\n",
        )
        .unwrap();
        let e = PolicySet::load(&path, &systems).unwrap_err();
        assert_eq!(e.exit_code(), 2);
        let e = e.to_string();
        let lines: Vec<&str> = e.lines().collect();
        assert!(
            lines[0].starts_with(&format!(
                "{}:3:9: rule[0].when: unknown attribute person.departmnt; did you mean person.department?",
                path.display()
            )),
            "{e}"
        );
        assert!(
            lines[1].contains(
                ":7:9: rule[1].when: unknown attribute person.dpet; did you mean person.dept?"
            ),
            "{e}"
        );
        assert!(lines[1].contains("the HR export's names work too: employee_id, first_name, last_name, dept, First, Last)"), "{e}");
    }

    #[test]
    fn type_errors_have_line_numbers_and_all_are_reported() {
        let text = r#"
[[rule]]
name = "a"
when = "person.department == 3"
grant = ["okta:group:everyone"]

[[rule]]
name = "b"
when = """
person.status == "active" &&
  person.start_date > "soon"
"""
grant = ["okta:group:everyone"]

[[rule]]
name = "c"
when = 'person.status && true'
grant = ["okta:group:everyone"]

[[rule]]
name = "d"
when = 'person.title'
grant = ["okta:group:everyone"]
"#;
        let e = err_text(text);
        let lines: Vec<&str> = e.lines().collect();
        assert_eq!(lines.len(), 4, "{e}");
        assert!(
            lines[0].starts_with("policies.toml:4:30: rule[0].when: cannot compare"),
            "{e}"
        );
        assert!(
            lines[1].starts_with("policies.toml:11:23: rule[1].when: \"soon\" is not a date"),
            "{e}"
        );
        assert!(
            lines[2].starts_with("policies.toml:17:9: rule[2].when: && needs bool operands"),
            "{e}"
        );
        assert!(
            lines[3].starts_with("policies.toml:22:9: rule[3].when: a condition must be a bool"),
            "{e}"
        );
    }

    #[test]
    fn syntax_errors_are_located() {
        let e = err_text(
            "[[rule]]\nname = \"a\"\nwhen = 'person.title = \"x\"'\ngrant = [\"okta:group:everyone\"]\n",
        );
        assert!(
            e.starts_with("policies.toml:3:22: rule[0].when: CEL syntax error"),
            "{e}"
        );
    }

    #[test]
    fn unknown_system_and_entitlement() {
        let text = r#"
[[rule]]
name = "a"
when = "true"
grant = ["oktaa:group:engineering", "okta:group:enginering", "okta:group", "slack:channel:anything"]
"#;
        let e = err_text(text);
        let lines: Vec<&str> = e.lines().collect();
        assert_eq!(lines.len(), 3, "{e}");
        assert!(lines[0].starts_with("policies.toml:5:10: rule[0].grant: unknown system \"oktaa\" in oktaa:group:engineering; did you mean \"okta\"?"), "{e}");
        assert!(lines[1].starts_with("policies.toml:5:37: rule[0].grant: okta:group:enginering is not in the okta catalogue; did you mean okta:group:engineering?"), "{e}");
        assert!(lines[2].contains("not of the form system:kind:name"), "{e}");
        // slack declares no entitlements, so any name is accepted.
        assert!(!e.contains("slack:channel"), "{e}");
    }

    #[test]
    fn duplicate_rule_and_bad_duration() {
        let text = r#"
[[rule]]
name = "a"
when = "true"
grant = ["okta:group:everyone"]

[[rule]]
name = "a"
when = "true"
grant = ["okta:group:everyone"]
duration = "3 months"
"#;
        let e = err_text(text);
        assert!(e.contains("policies.toml:8:8: rule[1].name: duplicate rule name \"a\": rule[0] on line 3 has it too"), "{e}");
        assert!(
            e.contains("policies.toml:11:12: rule[1].duration: invalid duration"),
            "{e}"
        );
    }

    #[test]
    fn toml_errors_and_unknown_keys_are_located() {
        let e = err_text(
            "[[rule]]\nname = \"a\"\nwhen = \"true\"\ngrant = [\"okta:group:everyone\"]\nduraton = \"3d\"\n",
        );
        assert!(e.starts_with("policies.toml:5:1"), "{e}");
        assert!(e.contains("duraton"), "{e}");
        let e = err_text("[[rule]\n");
        assert!(e.starts_with("policies.toml:1:"), "{e}");
        let e = err_text("[attributes]\nlevel = \"integer\"\n");
        assert!(
            e.contains("policies.toml:2:9: attributes.level: unknown attribute type \"integer\""),
            "{e}"
        );
    }

    #[test]
    fn undeclared_custom_attribute_is_an_error() {
        let e = err_text(
            "[[rule]]\nname = \"a\"\nwhen = 'person.custom.level > 2'\ngrant = [\"okta:group:everyone\"]\n",
        );
        assert!(e.contains("unknown attribute person.custom.level"), "{e}");
        assert!(e.contains("[attributes]"), "{e}");
    }

    #[test]
    fn deeply_nested_toml_is_an_error_not_a_crash() {
        let text = format!("x = {}", "[".repeat(100_000));
        assert!(err_text(&text).starts_with("policies.toml:1:"));
    }

    #[test]
    fn policy_sets_can_be_shared_across_threads() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<PolicySet>();
    }

    #[test]
    fn a_missing_file_is_a_usage_error() {
        let dir = tempfile::tempdir().unwrap();
        let systems = SystemsConfig {
            catalog: catalog(),
            ..Default::default()
        };
        let e = PolicySet::load(&dir.path().join("policies.toml"), &systems).unwrap_err();
        assert_eq!(e.exit_code(), 2);
        assert!(
            e.to_string().ends_with("policies.toml does not exist"),
            "{e}"
        );
    }

    #[test]
    fn empty_file_is_an_empty_policy() {
        let ps = parse("").unwrap();
        assert!(ps.rules().is_empty());
        assert!(ps.evaluate(&person("E1", "x", "y"), now()).is_empty());
    }

    #[test]
    fn batch_evaluation_equals_one_by_one() {
        let ps = parse(POLICIES).unwrap();
        let people = vec![
            person("E1", "Engineering", "Staff Engineer"),
            person("E2", "Sales", "Rep"),
            person("E3", "Legal", "Counsel"),
        ];
        let all = ps.evaluate_all(&people, now());
        let one: Vec<Grant> = people.iter().flat_map(|p| ps.evaluate(p, now())).collect();
        assert_eq!(all, one);
    }

    #[test]
    fn recompute_person_writes_intended_grants() {
        let ps = parse(POLICIES).unwrap();
        let mut store = Store::open_in_memory().unwrap();
        let mut p = person("E1", "Engineering", "Engineer");
        store.write(|tx| tx.upsert_person(&p, "test")).unwrap();
        assert_eq!(
            recompute_person(&mut store, &ps, &p, "test", now()).unwrap(),
            (4, 0)
        );
        p.department = "Sales".into();
        assert_eq!(
            recompute_person(&mut store, &ps, &p, "test", now()).unwrap(),
            (1, 2)
        );
        let rows = store.intended_for("E1").unwrap();
        let names: Vec<&str> = rows.iter().map(|r| &*r.entitlement).collect();
        assert_eq!(
            names,
            vec![
                "okta:group:everyone",
                "okta:group:sales",
                "slack:channel:general"
            ]
        );
    }
}
