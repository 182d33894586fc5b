//! Differential tests: the compiled evaluator (with its rule index), the slow explain
//! evaluator and the cel crate's own interpreter must agree on every condition for every
//! person. Conditions come from a fixed list and from a random generator over the whole
//! supported subset; people are random. Plus: `PolicySet::parse` never panics.

use super::PolicySet;
use super::explain::truthy;
use super::schema::Schema;
use crate::model::{EmploymentStatus, Person};
use chrono::NaiveDate;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use std::collections::HashMap;
use std::path::Path;

const ATTRIBUTES: &str =
    "[attributes]\nclearance = \"string\"\nlevel = \"int\"\nvip = \"bool\"\nsince = \"date\"\n";

const STR_FIELDS: &[&str] = &[
    "hris_id",
    "given_name",
    "family_name",
    "preferred_name",
    "display_name",
    "email",
    "department",
    "title",
    "manager_id",
    "location",
    "cost_center",
    "status",
    "custom.clearance",
];
const DATE_FIELDS: &[&str] = &["start_date", "end_date", "custom.since"];
const WORDS: &[&str] = &[
    "",
    "Engineering",
    "Sales",
    "Sales Ops",
    "Légal",
    "Staff Engineer",
    "Engineer",
    "Senior Account Executive",
    "Paris",
    "Berlin",
    "active",
    "leave",
    "contractor",
    "E1",
    "M1",
    "a@example.com",
    "CC-1",
    "Ada",
];
const FRAGMENTS: &[&str] = &["", "S", "Eng", "er", "Sales", "@example.com", "a", "é", " "];
const DATES: &[&str] = &["2019-12-31", "2020-01-01", "2021-06-15", "2024-02-29"];
const REGEXES: &[&str] = &["^S", "er$", "[0-9]", "^(Sales|Engineering)$", "é", "^$"];

const FIXED: &[&str] = &[
    r#"person.department == "Engineering" && person.status == "active""#,
    r#"person.department in ["Sales", "Sales Ops"] || person.title.endsWith("Executive")"#,
    r#"person.title.startsWith("Staff") && !(person.location == "Paris")"#,
    r#"person.status != "terminated" && person.email.endsWith("@example.com")"#,
    r#"person.start_date >= "2020-01-01" && person.end_date == """#,
    r#"person.start_date < person.custom.since"#,
    r#"person.custom.level > 2 || person.custom.vip"#,
    r#"person.custom.vip == false && person.custom.clearance == "contractor""#,
    r#"size(person.department) > 4 && person.department < "M""#,
    r#"person.title.matches("^(Staff|Senior) ") || person.department.contains("ale")"#,
    r#"(person.status == "leave" ? person.location : person.department) == "Paris""#,
    r#"(person.custom.level >= 0 ? person.custom.level : -1) <= 3"#,
    r#"person.manager_id == person.hris_id || person.preferred_name == person.given_name"#,
    r#"person.location in [person.department, "Berlin"] && true"#,
    r#"(person.department == "Sales") == (person.location == "Berlin")"#,
    r#"person.department == "Sales" || person.department == "Engineering" || person.location == "Paris""#,
    r#"!(person.department == "Sales" || person.department == "Légal") && person.status in ["active", "leave"]"#,
    r#"person.end_date != "" && person.end_date <= "2021-06-15""#,
    r#"person.department == "Nobody" && person.title == "Nothing""#,
    r#"person.start_date in ["2020-01-01", ""]"#,
];

fn pick(xs: &'static [&'static str]) -> impl Strategy<Value = &'static str> + Clone {
    proptest::sample::select(xs)
}

/// A literal to compare `field` with: status only ever holds the four statuses.
fn word_for(field: &str, w: &str) -> String {
    if field == "status" {
        lit(EmploymentStatus::ALL[w.len() % 4].as_str())
    } else {
        lit(w)
    }
}

fn lit(s: &str) -> String {
    let mut out = String::new();
    super::check::write_str_lit(&mut out, s).unwrap_or_default();
    out
}

fn cmp_op() -> impl Strategy<Value = &'static str> + Clone {
    pick(&["==", "!=", "<", "<=", ">", ">="])
}

/// A random well-typed bool condition.
fn condition() -> impl Strategy<Value = String> {
    let leaf = prop_oneof![
        (pick(STR_FIELDS), pick(&["==", "!="]), pick(WORDS))
            .prop_map(|(f, op, w)| format!("person.{f} {op} {}", word_for(f, w))),
        (pick(STR_FIELDS), cmp_op(), pick(WORDS))
            .prop_map(|(f, op, w)| format!("person.{f} {op} {}", word_for(f, w))),
        (
            pick(STR_FIELDS),
            proptest::collection::vec(pick(WORDS), 0..4)
        )
            .prop_map(|(f, ws)| {
                let items: Vec<String> = ws.iter().map(|w| word_for(f, w)).collect();
                format!("person.{f} in [{}]", items.join(", "))
            }),
        (
            pick(STR_FIELDS),
            pick(&["startsWith", "endsWith", "contains"]),
            pick(FRAGMENTS)
        )
            .prop_map(|(f, m, w)| format!("person.{f}.{m}({})", lit(w))),
        (pick(STR_FIELDS), pick(STR_FIELDS), cmp_op())
            .prop_map(|(a, b, op)| format!("person.{a} {op} person.{b}")),
        (pick(STR_FIELDS), cmp_op(), 0i64..12)
            .prop_map(|(f, op, n)| format!("size(person.{f}) {op} {n}")),
        (pick(STR_FIELDS), pick(REGEXES))
            .prop_map(|(f, r)| format!("person.{f}.matches({})", lit(r))),
        (pick(DATE_FIELDS), cmp_op(), pick(DATES))
            .prop_map(|(f, op, d)| format!("person.{f} {op} \"{d}\"")),
        (pick(DATE_FIELDS), pick(&["==", "!="]))
            .prop_map(|(f, op)| format!("person.{f} {op} \"\"")),
        (pick(DATE_FIELDS), pick(DATE_FIELDS), cmp_op())
            .prop_map(|(a, b, op)| format!("person.{a} {op} person.{b}")),
        (cmp_op(), -3i64..12).prop_map(|(op, n)| format!("person.custom.level {op} {n}")),
        Just("person.custom.vip".to_string()),
        pick(&["true", "false"]).prop_map(|b| format!("person.custom.vip == {b}")),
        pick(&["true", "false"]).prop_map(str::to_string),
    ];
    leaf.prop_recursive(4, 24, 3, |inner| {
        prop_oneof![
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("({a} && {b})")),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("({a} || {b})")),
            inner.clone().prop_map(|a| format!("!({a})")),
            (inner.clone(), inner.clone(), inner.clone())
                .prop_map(|(c, a, b)| format!("({c} ? {a} : {b})")),
            (inner.clone(), inner.clone(), pick(&["==", "!="]))
                .prop_map(|(a, b, op)| format!("(({a}) {op} ({b}))")),
            (inner.clone(), pick(STR_FIELDS), pick(WORDS), pick(WORDS)).prop_map(
                |(c, f, w, v)| format!("(({c}) ? person.{f} : {}) == {}", lit(w), lit(v))
            ),
            (inner, cmp_op(), -2i64..6).prop_map(|(c, op, n)| format!(
                "(({c}) ? person.custom.level : size(person.title)) {op} {n}"
            )),
        ]
    })
}

fn opt_word() -> impl Strategy<Value = Option<String>> {
    proptest::option::of(pick(WORDS).prop_map(str::to_string))
}

fn opt_date() -> impl Strategy<Value = Option<NaiveDate>> {
    proptest::option::of(
        pick(DATES).prop_map(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").unwrap_or_default()),
    )
}

/// A random person whose values often hit the literals conditions use.
fn person() -> impl Strategy<Value = Person> {
    let names = (
        pick(WORDS),
        pick(WORDS),
        pick(WORDS),
        opt_word(),
        opt_word(),
        pick(WORDS),
        pick(WORDS),
    );
    let org = (
        pick(WORDS),
        opt_word(),
        pick(WORDS),
        pick(WORDS),
        proptest::sample::select(EmploymentStatus::ALL.to_vec()),
        opt_date(),
        opt_date(),
    );
    let custom = (
        proptest::option::of(pick(&["contractor", "", "staff"])),
        proptest::option::of(pick(&["3", "-2", "x", " 10 ", "0"])),
        proptest::option::of(pick(&["yes", "no", "TRUE", "1", ""])),
        proptest::option::of(pick(&["2020-01-01", "2024-02-29", "soon"])),
    );
    (names, org, custom).prop_map(|(n, o, c)| {
        let mut p = Person::new(n.0, n.1, n.2, n.5);
        p.preferred_name = n.3;
        p.display_name = n.4;
        p.department = n.6.to_string();
        p.title = o.0.to_string();
        p.manager_id = o.1;
        p.location = o.2.to_string();
        p.cost_center = o.3.to_string();
        p.status = o.4;
        p.start_date = o.5;
        p.end_date = o.6;
        for (k, v) in [
            ("clearance", c.0),
            ("level", c.1),
            ("vip", c.2),
            ("since", c.3),
        ] {
            if let Some(v) = v {
                p.custom.insert(k.into(), v.into());
            }
        }
        p
    })
}

/// The person as the cel interpreter sees it (see `schema` for the representation).
fn cel_person(schema: &Schema, p: &Person) -> cel::Value {
    let mut top: HashMap<String, cel::Value> = HashMap::new();
    let mut custom: HashMap<String, cel::Value> = HashMap::new();
    for (id, f) in schema.fields.iter().enumerate() {
        let v = schema.value(id, p).to_cel();
        match f.path.strip_prefix("person.custom.") {
            Some(name) => custom.insert(name.to_string(), v),
            None => top.insert(f.path.trim_start_matches("person.").to_string(), v),
        };
    }
    top.insert("custom".into(), cel::Value::from(custom));
    cel::Value::from(top)
}

fn policies(conditions: &[String]) -> String {
    let mut text = ATTRIBUTES.to_string();
    for (i, c) in conditions.iter().enumerate() {
        text.push_str(&format!(
            "[[rule]]\nname = \"r{i}\"\nwhen = '''{c}'''\ngrant = [\"slack:channel:c{i}\"]\n"
        ));
    }
    text
}

/// How many (condition, person) pairs were true and false: the tests are only meaningful
/// if both happen often.
#[derive(Default)]
struct Outcomes {
    true_: std::cell::Cell<usize>,
    false_: std::cell::Cell<usize>,
}

impl Outcomes {
    fn count(&self, b: bool) {
        let c = if b { &self.true_ } else { &self.false_ };
        c.set(c.get() + 1);
    }

    fn assert_mixed(&self) {
        let (t, f) = (self.true_.get(), self.false_.get());
        assert!(
            t * 10 > t + f && f * 10 > t + f,
            "too one-sided: {t} true, {f} false"
        );
    }
}

/// Check all three evaluators on these conditions and people.
fn agree(
    root: &cel::Context<'_, '_>,
    conditions: &[String],
    people: &[Person],
    outcomes: &Outcomes,
) -> Result<(), TestCaseError> {
    let ps = match PolicySet::parse(
        Path::new("policies.toml"),
        &policies(conditions),
        &super::tests::catalog(),
    ) {
        Ok(ps) => ps,
        Err(e) => return Err(TestCaseError::fail(format!("did not load: {e}"))),
    };
    let programs: Vec<cel::Program> = conditions
        .iter()
        .map(|c| cel::Program::compile(c).map_err(|e| TestCaseError::fail(e.to_string())))
        .collect::<Result<_, _>>()?;
    let schema = ps.schema();
    for p in people {
        let fast: Vec<&str> = ps
            .matching_rules(p)
            .iter()
            .map(|r| r.name.as_str())
            .collect();
        let mut ctx = root.new_inner_scope();
        ctx.add_variable_from_value("person", cel_person(schema, p));
        let values: Vec<_> = (0..schema.fields.len())
            .map(|i| schema.value(i, p))
            .collect();
        for (i, (prog, rule)) in programs.iter().zip(ps.rules()).enumerate() {
            let by_cel = match prog.execute(&ctx) {
                Ok(cel::Value::Bool(b)) => b,
                other => {
                    return Err(TestCaseError::fail(format!(
                        "cel gave {other:?} for {}",
                        conditions[i]
                    )));
                }
            };
            outcomes.count(by_cel);
            let by_fast = fast.contains(&rule.name.as_str());
            let by_slow = truthy(&rule.condition, &values);
            prop_assert_eq!(
                by_fast,
                by_cel,
                "fast vs cel on {} for {:?}",
                &conditions[i],
                p
            );
            prop_assert_eq!(by_slow, by_cel, "explain vs cel on {}", &conditions[i]);
        }
    }
    Ok(())
}

#[test]
fn fixed_conditions_agree_with_cel() {
    let root = cel::Context::default();
    let conditions: Vec<String> = FIXED.iter().map(|s| s.to_string()).collect();
    let mut runner = TestRunner::new(Config {
        cases: 64,
        ..Config::default()
    });
    let outcomes = Outcomes::default();
    let result = runner.run(&proptest::collection::vec(person(), 1..24), |people| {
        agree(&root, &conditions, &people, &outcomes)
    });
    if let Err(e) = result {
        panic!("{e}");
    }
    outcomes.assert_mixed();
}

#[test]
fn random_conditions_agree_with_cel() {
    let root = cel::Context::default();
    let mut runner = TestRunner::new(Config {
        cases: 192,
        ..Config::default()
    });
    let strategy = (
        proptest::collection::vec(condition(), 1..8),
        proptest::collection::vec(person(), 1..12),
    );
    let outcomes = Outcomes::default();
    let result = runner.run(&strategy, |(conditions, people)| {
        agree(&root, &conditions, &people, &outcomes)
    });
    if let Err(e) = result {
        panic!("{e}");
    }
    outcomes.assert_mixed();
}

/// Tokens to build random, mostly-invalid conditions from.
const TOKENS: &[&str] = &[
    "person",
    ".",
    "department",
    "custom",
    "level",
    "vip",
    "start_date",
    "title",
    "==",
    "!=",
    "<",
    ">=",
    "&&",
    "||",
    "!",
    "?",
    ":",
    "(",
    ")",
    "[",
    "]",
    ",",
    "in",
    "\"x\"",
    "'y'",
    "1",
    "-",
    "+",
    "2.5",
    "true",
    "null",
    "size",
    "startsWith",
    "matches",
    "\"[\"",
    "has",
    "x",
    "1u",
    "{",
    "}",
    "\"2020-01-01\"",
    "b\"z\"",
    "exists",
    "e",
    "=>",
];

proptest! {
    #![proptest_config(Config { cases: 256, ..Config::default() })]

    #[test]
    fn parse_never_panics_on_arbitrary_text(text in "\\PC{0,200}") {
        let _ = PolicySet::parse(Path::new("p.toml"), &text, &super::tests::catalog());
    }

    #[test]
    fn parse_never_panics_on_arbitrary_conditions(
        when in "[ -~é\n]{0,80}",
        duration in "[0-9a-z ]{0,4}",
        grant in "[a-z:]{0,20}",
    ) {
        let text = format!(
            "{ATTRIBUTES}[[rule]]\nname = \"a\"\nwhen = '''{}'''\ngrant = [\"{grant}\"]\nduration = \"{duration}\"\n",
            when.replace('\'', "\"")
        );
        let _ = PolicySet::parse(Path::new("p.toml"), &text, &super::tests::catalog());
    }

    #[test]
    fn parse_never_panics_on_token_soup(tokens in proptest::collection::vec(pick(TOKENS), 0..30)) {
        let text = format!(
            "{ATTRIBUTES}[[rule]]\nname = \"a\"\nwhen = '''{}'''\ngrant = [\"slack:channel:x\"]\n",
            tokens.join(" ")
        );
        // Every problem is located inside the file.
        if let Err(crate::Error::Input(ps)) =
            PolicySet::parse(Path::new("p.toml"), &text, &super::tests::catalog())
        {
            for p in ps.0 {
                prop_assert!(p.location.line >= 1 && p.location.line <= 8, "{}", p);
            }
        }
    }
}
