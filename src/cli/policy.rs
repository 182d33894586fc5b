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
        } => test(ctx, &policies, &people, &expect, update),
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
    people: &Path,
    expect: &Path,
    update: bool,
) -> Result<i32> {
    let fixture = golden::fixture_people(people)?;
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
