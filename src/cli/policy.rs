//! `accessdesk policy check|explain|test`.

use super::{Ctx, PolicyCmd};
use crate::policy::golden;
use crate::{Error, Result};
use std::path::Path;

pub fn run(ctx: &Ctx, cmd: PolicyCmd) -> Result<i32> {
    let systems = ctx.systems()?;
    let policies = ctx.policies(&systems)?;
    match cmd {
        PolicyCmd::Check => {
            let rules = policies.rules().len();
            let entitlements = policies.entitlements().count();
            if ctx.json {
                ctx.print_json(&serde_json::json!({
                    "file": policies.path().display().to_string(),
                    "rules": rules,
                    "entitlements": entitlements,
                }))?;
            } else {
                println!(
                    "{}: OK, {rules} rule{} granting {entitlements} entitlement{}",
                    policies.path().display(),
                    plural(rules),
                    plural(entitlements)
                );
            }
            Ok(0)
        }
        PolicyCmd::Explain { person } => {
            let store = ctx.store()?;
            let Some(p) = store.find_person(&person)? else {
                return Err(Error::usage(
                    format!("no person {person:?}"),
                    "give an HRIS id or work email; `accessdesk people list` shows who is loaded",
                ));
            };
            let x = policies.explain(&p);
            if ctx.json {
                ctx.print_json(&x)?;
            } else {
                print!("{x}");
            }
            Ok(0)
        }
        PolicyCmd::Test {
            people,
            expect,
            update,
        } => test(ctx, &policies, &systems.import, &people, &expect, update),
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// Evaluate fixture people and compare with (or write) the golden file. 0 when equal,
/// 1 when there is a difference.
fn test(
    ctx: &Ctx,
    policies: &crate::policy::PolicySet,
    mapping: &crate::config::ImportMapping,
    people: &Path,
    expect: &Path,
    update: bool,
) -> Result<i32> {
    let fixture = golden::fixture_people(people, mapping)?;
    let actual = golden::golden_for(policies, &fixture);
    if update {
        golden::write_golden(expect, &actual)?;
        if !ctx.json {
            println!("wrote {} ({} people)", expect.display(), actual.len());
        }
        return Ok(0);
    }
    if !expect.exists() {
        return Err(Error::usage(
            format!("golden file {} does not exist", expect.display()),
            "create it with --update and review it",
        ));
    }
    let expected = golden::read_golden(expect)?;
    let changes = golden::diff(&expected, &actual);
    if ctx.json {
        ctx.print_json(&serde_json::json!({
            "equal": changes.is_empty(),
            "people": fixture.len(),
            "changes": changes,
        }))?;
    } else if changes.is_empty() {
        println!(
            "{} people: intended grants match {}",
            fixture.len(),
            expect.display()
        );
    } else {
        for c in &changes {
            println!("{c}");
        }
        println!(
            "{} difference{} from {} (+ now granted, - no longer granted, ~ granted differently); \
             run with --update to accept",
            changes.len(),
            plural(changes.len()),
            expect.display()
        );
    }
    Ok(if changes.is_empty() { 0 } else { 1 })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Home;
    use crate::model::Person;
    use crate::store::Store;

    fn home() -> (tempfile::TempDir, Ctx) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("systems.toml"),
            "[systems.okta]\nkind = \"okta\"\n",
        )
        .unwrap();
        std::fs::write(
            dir.path().join("policies.toml"),
            "[[rule]]\nname = \"eng\"\nwhen = 'person.department == \"Engineering\"'\ngrant = [\"okta:group:eng\"]\n",
        )
        .unwrap();
        let ctx = Ctx {
            home: Home::new(dir.path()),
            json: false,
        };
        (dir, ctx)
    }

    #[test]
    fn explain_finds_people_by_id_or_email_and_rejects_unknown_ones() {
        let (_dir, ctx) = home();
        let mut p = Person::new("E1", "Ada", "Lovelace", "ada@example.com");
        p.department = "Engineering".into();
        let mut store = Store::open(&ctx.home.db_path()).unwrap();
        store.write(|tx| tx.upsert_person(&p, "test")).unwrap();
        drop(store);
        for who in ["E1", "ADA@example.com"] {
            let cmd = PolicyCmd::Explain { person: who.into() };
            assert_eq!(run(&ctx, cmd).unwrap(), 0);
        }
        let e = run(
            &ctx,
            PolicyCmd::Explain {
                person: "E9".into(),
            },
        )
        .unwrap_err();
        assert_eq!(e.exit_code(), 2);
        assert!(e.to_string().contains("no person \"E9\""), "{e}");
        assert!(e.hint().is_some());
    }

    #[test]
    fn test_exits_1_on_a_difference_and_0_when_equal() {
        let (dir, ctx) = home();
        let csv = dir.path().join("people.csv");
        let golden = dir.path().join("golden.json");
        std::fs::write(&csv, "employee_id,first_name,email,status,department\nE1,A,a@example.com,active,Engineering\nE2,B,b@example.com,active,Sales\n").unwrap();
        let test = |update: bool| PolicyCmd::Test {
            people: csv.clone(),
            expect: golden.clone(),
            update,
        };
        // No golden yet: a usage error, not a silent pass.
        assert_eq!(run(&ctx, test(false)).unwrap_err().exit_code(), 2);
        assert_eq!(run(&ctx, test(true)).unwrap(), 0);
        assert_eq!(run(&ctx, test(false)).unwrap(), 0);
        std::fs::write(&csv, "employee_id,first_name,email,status,department\nE1,A,a@example.com,active,Sales\nE2,B,b@example.com,active,Sales\n").unwrap();
        assert_eq!(run(&ctx, test(false)).unwrap(), 1);
        let g = golden::read_golden(&golden).unwrap();
        assert!(
            g["E1"].contains_key("okta:group:eng"),
            "the golden file is unchanged"
        );
    }

    #[test]
    fn check_reports_problems_as_input_errors() {
        let (dir, ctx) = home();
        std::fs::write(
            dir.path().join("policies.toml"),
            "[[rule]]\nname = \"eng\"\nwhen = 'person.dept == \"x\"'\ngrant = [\"okta:group:eng\"]\n",
        )
        .unwrap();
        let e = run(&ctx, PolicyCmd::Check).unwrap_err();
        assert_eq!(e.exit_code(), 2);
        assert!(
            e.to_string()
                .contains("policies.toml:3:9: rule[0].when: unknown attribute person.dept"),
            "{e}"
        );
    }
}
