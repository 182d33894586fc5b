//! Explain: which entitlements a person gets and why, and why the other rules did not
//! match. Walks the checked conditions with a slow evaluator that can show values; the
//! result agrees with the fast evaluator (the differential tests check both against cel).

use super::check::TExpr;
use super::schema::AttrValue;
use super::{PolicySet, Rule};
use crate::model::Person;
use chrono::NaiveDate;
use serde::Serialize;
use std::fmt;

/// Everything explain knows about one person.
#[derive(Debug, Clone, Serialize)]
pub struct Explanation {
    pub person: String,
    pub name: String,
    pub email: String,
    /// One entry per entitlement, sorted.
    pub entitlements: Vec<ExplainedGrant>,
    /// Rules whose condition was false, in file order.
    pub unmatched: Vec<UnmatchedRule>,
}

/// An entitlement the person should hold.
#[derive(Debug, Clone, Serialize)]
pub struct ExplainedGrant {
    pub entitlement: String,
    /// The rule whose grant is kept (see the crate docs for how one is chosen).
    pub rule: String,
    pub condition: String,
    /// The attribute values that made the condition true.
    pub because: Vec<ShownValue>,
    pub requires_approval: bool,
    /// The time bound, e.g. `90d`; the grant expires that long after evaluation.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration: Option<String>,
    /// Other matching rules that grant the same entitlement.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub also_granted_by: Vec<String>,
}

/// A rule that did not match.
#[derive(Debug, Clone, Serialize)]
pub struct UnmatchedRule {
    pub rule: String,
    pub condition: String,
    /// The tests that were false (all false conjuncts; every branch of a false `||`).
    pub failed: Vec<FailedTest>,
}

#[derive(Debug, Clone, Serialize)]
pub struct FailedTest {
    /// The test, as CEL.
    pub test: String,
    /// The values of the attributes it reads.
    pub values: Vec<ShownValue>,
}

/// One attribute and its value for this person, shown as CEL would write it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ShownValue {
    pub attribute: String,
    pub value: String,
}

impl fmt::Display for ShownValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} = {}", self.attribute, self.value)
    }
}

pub(super) fn explain(ps: &PolicySet, p: &Person) -> Explanation {
    let schema = ps.schema();
    let values: Vec<AttrValue> = (0..schema.fields.len())
        .map(|id| schema.value(id, p))
        .collect();
    let show = |ids: &[usize]| -> Vec<ShownValue> {
        ids.iter()
            .map(|&id| ShownValue {
                attribute: schema.field(id).path.clone(),
                value: values[id].to_string(),
            })
            .collect()
    };
    let mut matched: Vec<u32> = Vec::new();
    let mut unmatched = Vec::new();
    for (i, rule) in ps.rules().iter().enumerate() {
        if truthy(&rule.condition, &values) {
            matched.push(i as u32);
        } else {
            let mut leaves = Vec::new();
            why_false(&rule.condition, &values, &mut leaves);
            let failed = leaves
                .into_iter()
                .map(|leaf| {
                    let mut ids = Vec::new();
                    leaf.attrs(&mut ids);
                    FailedTest {
                        test: leaf.display(schema).to_string(),
                        values: show(&ids),
                    }
                })
                .collect();
            unmatched.push(UnmatchedRule {
                rule: rule.name.clone(),
                condition: rule.condition.display(schema).to_string(),
                failed,
            });
        }
    }
    let mut pairs = Vec::new();
    ps.winners(&matched, &mut pairs);
    let entitlements = pairs
        .iter()
        .map(|&(ent, _, ri)| {
            let rule: &Rule = &ps.rules[ri as usize];
            let info = &ps.entitlements[ent as usize];
            let mut ids = Vec::new();
            why_true(&rule.condition, &values, &mut ids);
            let also_granted_by = matched
                .iter()
                .filter(|&&m| m != ri && ps.rules[m as usize].grant_ids.contains(&ent))
                .map(|&m| ps.rules[m as usize].name.clone())
                .collect();
            ExplainedGrant {
                entitlement: info.reference.to_string(),
                rule: rule.name.clone(),
                condition: rule.condition.display(schema).to_string(),
                because: show(&ids),
                requires_approval: rule.requires_approval || info.catalogue_approval,
                duration: rule.duration_text.clone(),
                also_granted_by,
            }
        })
        .collect();
    let name = p
        .display_name
        .clone()
        .unwrap_or_else(|| format!("{} {}", p.given_name, p.family_name));
    Explanation {
        person: p.hris_id.clone(),
        name,
        email: p.email.clone(),
        entitlements,
        unmatched,
    }
}

impl fmt::Display for Explanation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{} ({}, {})", self.name, self.person, self.email)?;
        writeln!(f)?;
        if self.entitlements.is_empty() {
            writeln!(f, "No entitlements: no rule matched.")?;
        } else {
            writeln!(f, "Entitlements ({}):", self.entitlements.len())?;
        }
        for g in &self.entitlements {
            let mut flags = Vec::new();
            if g.requires_approval {
                flags.push("needs approval".to_string());
            }
            if let Some(d) = &g.duration {
                flags.push(format!("expires {d} after grant"));
            }
            if flags.is_empty() {
                writeln!(f, "  {}", g.entitlement)?;
            } else {
                writeln!(f, "  {}  [{}]", g.entitlement, flags.join(", "))?;
            }
            writeln!(f, "    rule {}: {}", g.rule, g.condition)?;
            if !g.because.is_empty() {
                writeln!(f, "    because {}", join(&g.because))?;
            }
            if !g.also_granted_by.is_empty() {
                writeln!(f, "    also granted by {}", g.also_granted_by.join(", "))?;
            }
        }
        if !self.unmatched.is_empty() {
            writeln!(f)?;
            writeln!(f, "Rules that did not match ({}):", self.unmatched.len())?;
        }
        for u in &self.unmatched {
            writeln!(f, "  {}: {}", u.rule, u.condition)?;
            for t in &u.failed {
                if t.values.is_empty() {
                    writeln!(f, "    false: {}", t.test)?;
                } else {
                    writeln!(f, "    false: {}  ({})", t.test, join(&t.values))?;
                }
            }
        }
        Ok(())
    }
}

fn join(vs: &[ShownValue]) -> String {
    vs.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// A value in the slow evaluator. Same-variant comparisons only (the checker ensures it).
#[derive(Debug, Clone, PartialEq, PartialOrd)]
pub(crate) enum V {
    Bool(bool),
    Int(i64),
    Str(String),
    /// `None` is the absent date, which sorts first.
    Date(Option<NaiveDate>),
    List(Vec<V>),
}

/// Evaluate a checked expression against a person's attribute values (by field id).
pub(crate) fn eval(e: &TExpr, vals: &[AttrValue]) -> V {
    match e {
        TExpr::Bool(b) => V::Bool(*b),
        TExpr::Int(i) => V::Int(*i),
        TExpr::Str(s) => V::Str(s.clone()),
        TExpr::Date(d) => V::Date(*d),
        TExpr::Attr(id, _) => match &vals[*id] {
            AttrValue::Str(s) => V::Str(s.clone()),
            AttrValue::Int(i) => V::Int(*i),
            AttrValue::Bool(b) => V::Bool(*b),
            AttrValue::Date(d) => V::Date(*d),
        },
        TExpr::List(xs) => V::List(xs.iter().map(|x| eval(x, vals)).collect()),
        TExpr::Not(x) => V::Bool(!truthy(x, vals)),
        TExpr::And(xs) => V::Bool(xs.iter().all(|x| truthy(x, vals))),
        TExpr::Or(xs) => V::Bool(xs.iter().any(|x| truthy(x, vals))),
        TExpr::Cmp(op, a, b) => {
            let (a, b) = (eval(a, vals), eval(b, vals));
            V::Bool(a.partial_cmp(&b).is_some_and(|o| op.holds(o)))
        }
        TExpr::In(a, xs) => {
            let a = eval(a, vals);
            V::Bool(xs.iter().any(|x| eval(x, vals) == a))
        }
        TExpr::StrFn(f, a, b) => match (eval(a, vals), eval(b, vals)) {
            (V::Str(a), V::Str(b)) => V::Bool(f.apply(&a, &b)),
            _ => V::Bool(false),
        },
        TExpr::Matches(a, re) => match eval(a, vals) {
            V::Str(a) => V::Bool(re.is_match(&a)),
            _ => V::Bool(false),
        },
        TExpr::Size(x) => match eval(x, vals) {
            V::Str(s) => V::Int(s.chars().count() as i64),
            V::List(l) => V::Int(l.len() as i64),
            _ => V::Int(0),
        },
        TExpr::Cond(c, a, b) => {
            if truthy(c, vals) {
                eval(a, vals)
            } else {
                eval(b, vals)
            }
        }
    }
}

pub(crate) fn truthy(e: &TExpr, vals: &[AttrValue]) -> bool {
    eval(e, vals) == V::Bool(true)
}

/// The smallest tests that made a false condition false.
fn why_false<'e>(e: &'e TExpr, vals: &[AttrValue], out: &mut Vec<&'e TExpr>) {
    match e {
        TExpr::And(xs) => {
            for x in xs.iter().filter(|x| !truthy(x, vals)) {
                why_false(x, vals, out);
            }
        }
        TExpr::Or(xs) => xs.iter().for_each(|x| why_false(x, vals, out)),
        _ => out.push(e),
    }
}

/// The attributes behind a true condition: all of a conjunction, the true branches of a
/// disjunction.
fn why_true(e: &TExpr, vals: &[AttrValue], out: &mut Vec<usize>) {
    match e {
        TExpr::And(xs) => xs.iter().for_each(|x| why_true(x, vals, out)),
        TExpr::Or(xs) => xs
            .iter()
            .filter(|x| truthy(x, vals))
            .for_each(|x| why_true(x, vals, out)),
        _ => e.attrs(out),
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{POLICIES, parse, person};

    #[test]
    fn explains_matches_and_misses() {
        let ps = parse(POLICIES).unwrap();
        let p = person("E1", "Engineering", "Staff Engineer");
        let x = ps.explain(&p);
        assert_eq!(x.person, "E1");
        let ents: Vec<&str> = x
            .entitlements
            .iter()
            .map(|g| g.entitlement.as_str())
            .collect();
        assert_eq!(
            ents,
            vec![
                "github:team:admins",
                "github:team:eng",
                "okta:group:engineering",
                "okta:group:everyone",
                "slack:channel:general"
            ]
        );
        let eng = &x.entitlements[2];
        assert_eq!(eng.rule, "engineering");
        let because: Vec<String> = eng.because.iter().map(ToString::to_string).collect();
        assert_eq!(
            because,
            vec![
                "person.department = \"Engineering\"",
                "person.status = \"active\""
            ]
        );
        let admins = &x.entitlements[0];
        assert!(admins.requires_approval);
        assert_eq!(admins.duration.as_deref(), Some("90d"));

        // Unmatched rules say which test failed and with what value.
        let names: Vec<&str> = x.unmatched.iter().map(|u| u.rule.as_str()).collect();
        assert_eq!(names, vec!["contractors-temp", "sales"]);
        let sales = &x.unmatched[1];
        assert_eq!(sales.failed.len(), 2);
        assert_eq!(
            sales.failed[0].test,
            "person.department in [\"Sales\", \"Sales Ops\"]"
        );
        assert_eq!(
            sales.failed[0].values[0].to_string(),
            "person.department = \"Engineering\""
        );
        assert_eq!(
            sales.failed[1].test,
            "person.title.endsWith(\"Account Executive\")"
        );
        let temp = &x.unmatched[0];
        assert_eq!(temp.failed.len(), 1, "only the false conjunct is blamed");
        assert_eq!(
            temp.failed[0].values[0].to_string(),
            "person.custom.clearance = \"\""
        );

        let text = x.to_string();
        assert!(
            text.contains("github:team:admins  [needs approval, expires 90d after grant]"),
            "{text}"
        );
        assert!(
            text.contains(
                "because person.department = \"Engineering\", person.status = \"active\""
            ),
            "{text}"
        );
        assert!(text.contains("false: person.title.endsWith(\"Account Executive\")  (person.title = \"Staff Engineer\")"), "{text}");

        let json = serde_json::to_value(&x).unwrap();
        assert_eq!(json["entitlements"][0]["rule"], "eng-admins");
        assert_eq!(
            json["unmatched"][1]["failed"][0]["values"][0]["value"],
            "\"Engineering\""
        );
    }

    #[test]
    fn overlapping_rules_are_listed() {
        let ps = parse(POLICIES).unwrap();
        let mut p = person("E1", "Engineering", "Engineer");
        p.custom.insert("clearance".into(), "contractor".into());
        let x = ps.explain(&p);
        let eng = x
            .entitlements
            .iter()
            .find(|g| g.entitlement == "github:team:eng")
            .unwrap();
        assert_eq!(eng.rule, "engineering");
        assert_eq!(eng.also_granted_by, vec!["contractors-temp".to_string()]);
    }
}
