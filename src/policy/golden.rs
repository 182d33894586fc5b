//! `accessdesk policy test`: evaluate the rules against fixture people and compare with a
//! golden file, so that a policy change shows exactly whose access it changes.
//!
//! The golden file is JSON, sorted, one object per person (people with no grants included):
//!
//! ```json
//! {
//!   "E001": {
//!     "github:team:admins": { "rule": "eng-admins", "requires_approval": true, "duration": "90d" },
//!     "okta:group:engineering": { "rule": "engineering" }
//!   },
//!   "E002": {}
//! }
//! ```
//!
//! `requires_approval` and `duration` are omitted when false / absent. Durations are kept
//! as written in the rule (not as timestamps) so the file does not depend on the clock.

use super::PolicySet;
use crate::config::ImportMapping;
use crate::error::{InputProblem, Location};
use crate::model::Person;
use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::Path;

/// What one person should hold: entitlement -> how.
pub type Expected = BTreeMap<String, GoldenGrant>;

/// Person id -> expected grants.
pub type Golden = BTreeMap<String, Expected>;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GoldenGrant {
    pub rule: String,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub requires_approval: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<String>,
}

impl fmt::Display for GoldenGrant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "rule {}", self.rule)?;
        if self.requires_approval {
            f.write_str(", needs approval")?;
        }
        if let Some(d) = &self.duration {
            write!(f, ", expires after {d}")?;
        }
        Ok(())
    }
}

/// Evaluate everyone into the golden form.
pub fn golden_for(ps: &PolicySet, people: &[Person]) -> Golden {
    let durations: HashMap<&str, Option<&String>> = ps
        .rules()
        .iter()
        .map(|r| (r.name.as_str(), r.duration_text.as_ref()))
        .collect();
    let now = chrono::Utc::now();
    people
        .iter()
        .map(|p| {
            let grants = ps
                .evaluate(p, now)
                .into_iter()
                .map(|g| {
                    let duration = durations.get(g.rule.as_str()).copied().flatten().cloned();
                    (
                        g.entitlement.to_string(),
                        GoldenGrant {
                            rule: g.rule,
                            requires_approval: g.requires_approval,
                            duration,
                        },
                    )
                })
                .collect();
            (p.hris_id.clone(), grants)
        })
        .collect()
}

/// One difference between the golden file and the current result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "change", rename_all = "lowercase")]
pub enum Change {
    /// The policies now grant something the golden file does not expect.
    Added {
        person: String,
        entitlement: String,
        now: GoldenGrant,
    },
    /// The golden file expects something the policies no longer grant.
    Removed {
        person: String,
        entitlement: String,
        was: GoldenGrant,
    },
    /// Granted in both, but by another rule, or with other approval or duration.
    Changed {
        person: String,
        entitlement: String,
        was: GoldenGrant,
        now: GoldenGrant,
    },
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Change::Added {
                person,
                entitlement,
                now,
            } => write!(f, "+ {person} {entitlement} ({now})"),
            Change::Removed {
                person,
                entitlement,
                was,
            } => write!(f, "- {person} {entitlement} ({was})"),
            Change::Changed {
                person,
                entitlement,
                was,
                now,
            } => write!(f, "~ {person} {entitlement} ({was} -> {now})"),
        }
    }
}

/// Differences, by person then entitlement.
pub fn diff(expected: &Golden, actual: &Golden) -> Vec<Change> {
    let empty = Expected::new();
    let mut people: Vec<&String> = expected.keys().chain(actual.keys()).collect();
    people.sort();
    people.dedup();
    let mut out = Vec::new();
    for person in people {
        let want = expected.get(person).unwrap_or(&empty);
        let got = actual.get(person).unwrap_or(&empty);
        let mut ents: Vec<&String> = want.keys().chain(got.keys()).collect();
        ents.sort();
        ents.dedup();
        for ent in ents {
            let (person, entitlement) = (person.clone(), ent.clone());
            match (want.get(ent), got.get(ent)) {
                (None, Some(now)) => out.push(Change::Added {
                    person,
                    entitlement,
                    now: now.clone(),
                }),
                (Some(was), None) => out.push(Change::Removed {
                    person,
                    entitlement,
                    was: was.clone(),
                }),
                (Some(was), Some(now)) if was != now => out.push(Change::Changed {
                    person,
                    entitlement,
                    was: was.clone(),
                    now: now.clone(),
                }),
                _ => {}
            }
        }
    }
    out
}

/// Read a golden file; a malformed one is an input error at its line and column.
pub fn read_golden(path: &Path) -> Result<Golden> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Error::io(format!("reading {}", path.display()), e))?;
    serde_json::from_str(&text).map_err(|e| {
        Error::input(vec![InputProblem {
            location: Location {
                file: path.to_path_buf(),
                line: e.line(),
                column: e.column(),
            },
            key: String::new(),
            message: format!("not a policy golden file: {e}"),
            hint: "regenerate it with `accessdesk policy test --update`".into(),
        }])
    })
}

/// Write a golden file: pretty JSON, sorted, ending with a newline.
pub fn write_golden(path: &Path, golden: &Golden) -> Result<()> {
    let mut text = serde_json::to_string_pretty(golden)
        .map_err(|e| Error::Failed(format!("encoding golden file: {e}")))?;
    text.push('\n');
    std::fs::write(path, text).map_err(|e| Error::io(format!("writing {}", path.display()), e))
}

/// Read fixture people for a policy test. It is the HR importer with the given column
/// mapping (systems.toml's), so fixtures are validated exactly like real imports; columns
/// the mapping does not name become custom attributes (`person.custom.<header>`).
pub fn fixture_people(path: &Path, mapping: &ImportMapping) -> Result<Vec<Person>> {
    let mut mapping = mapping.clone();
    mapping.extra_columns_as_custom = true;
    crate::import::read_people_csv(path, &mapping)
}

#[cfg(test)]
mod tests {
    use super::super::tests::{POLICIES, parse};
    use super::*;
    use crate::model::EmploymentStatus;
    use chrono::NaiveDate;

    const CSV: &str =
        "employee_id,first_name,last_name,email,department,title,status,start_date,clearance
E001,Ada,Lovelace,ada@example.com,Engineering,Staff Engineer,active,2020-01-02,
E002,Grace,Hopper,grace@example.com,Sales,Rep,active,,
E003,Alan,Turing,alan@example.com,Engineering,Engineer,leave,,contractor
E004,Joan,Clarke,joan@example.com,Legal,Counsel,terminated,,
";

    fn fixture(dir: &Path) -> Vec<Person> {
        let p = dir.join("people.csv");
        std::fs::write(&p, CSV).unwrap();
        fixture_people(&p, &ImportMapping::default()).unwrap()
    }

    #[test]
    fn reads_fixture_people() {
        let dir = tempfile::tempdir().unwrap();
        let people = fixture(dir.path());
        assert_eq!(people.len(), 4);
        assert_eq!(people[0].start_date, NaiveDate::from_ymd_opt(2020, 1, 2));
        assert_eq!(people[2].status, EmploymentStatus::Leave);
        assert_eq!(people[2].custom["clearance"], "contractor");
        assert!(people[0].custom.is_empty());
    }

    #[test]
    fn bad_rows_are_all_reported_with_lines() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("bad.csv");
        std::fs::write(
            &p,
            "employee_id,first_name,email,status,start_date\nE1,A,a@example.com,actve,\nE2,B,b@example.com,active,01/02/2020\nE1,C,c@example.com,active,\n",
        )
        .unwrap();
        let e = fixture_people(&p, &ImportMapping::default())
            .unwrap_err()
            .to_string();
        let lines: Vec<&str> = e.lines().collect();
        assert_eq!(lines.len(), 3, "{e}");
        assert!(
            lines[0].contains("bad.csv:2: status: unknown employment status"),
            "{e}"
        );
        assert!(lines[1].contains("bad.csv:3: start_date"), "{e}");
        assert!(
            lines[2].contains("bad.csv:4: employee_id: employee_id \"E1\" also appears on line 2"),
            "{e}"
        );
    }

    #[test]
    fn golden_round_trip_and_diff() {
        let dir = tempfile::tempdir().unwrap();
        let people = fixture(dir.path());
        let ps = parse(POLICIES).unwrap();
        let golden = golden_for(&ps, &people);
        assert_eq!(golden["E003"].len(), 1);
        assert_eq!(
            golden["E003"]["github:team:eng"],
            GoldenGrant {
                rule: "contractors-temp".into(),
                requires_approval: true,
                duration: Some("30d".into())
            }
        );
        assert!(golden["E004"].is_empty(), "people with nothing are kept");
        let path = dir.path().join("golden.json");
        write_golden(&path, &golden).unwrap();
        let back = read_golden(&path).unwrap();
        assert_eq!(back, golden);
        assert!(diff(&back, &golden).is_empty());
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            text.contains("\"okta:group:engineering\": {\n      \"rule\": \"engineering\"\n    }"),
            "{text}"
        );

        // A policy change shows as a readable diff.
        let changed = POLICIES
            .replace("\"Sales\", \"Sales Ops\"", "\"Sales Ops\"")
            .replace("duration = \"90d\"", "duration = \"30d\"");
        let ps2 = parse(&changed).unwrap();
        let d = diff(&golden, &golden_for(&ps2, &people));
        let lines: Vec<String> = d.iter().map(ToString::to_string).collect();
        assert_eq!(
            lines,
            vec![
                "~ E001 github:team:admins (rule eng-admins, needs approval, expires after 90d -> rule eng-admins, needs approval, expires after 30d)",
                "- E002 okta:group:sales (rule sales)",
            ]
        );
        // And the reverse direction is an addition.
        let d = diff(&golden_for(&ps2, &people), &golden);
        assert!(
            d.iter()
                .any(|c| c.to_string() == "+ E002 okta:group:sales (rule sales)")
        );
    }

    #[test]
    fn malformed_golden_is_located() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("g.json");
        std::fs::write(&p, "{\n  \"E1\": [\"okta:group:x\"]\n}\n").unwrap();
        let e = read_golden(&p).unwrap_err();
        assert_eq!(e.exit_code(), 2);
        assert!(e.to_string().contains("g.json:2:"), "{e}");
    }
}
