//! `accessdesk people import|list|show`.

use super::{Ctx, PeopleCmd};
use crate::config::SystemsConfig;
use crate::import::{FeedOptions, import_feed, read_hr_file};
use crate::model::Person;
use crate::{Error, Result};

pub fn run(ctx: &Ctx, cmd: PeopleCmd) -> Result<i32> {
    match cmd {
        PeopleCmd::Import {
            file,
            mapping,
            dry_run,
            approve_mass_change,
            reason,
            approve_rehire,
            snapshot,
            force_older,
        } => {
            if force_older && reason.as_deref().is_none_or(|r| r.trim().is_empty()) {
                return Err(Error::usage(
                    "--force-older needs --reason",
                    "say why an export older than the last one imported is meant",
                ));
            }
            if !approve_rehire.is_empty() && reason.as_deref().is_none_or(|r| r.trim().is_empty()) {
                return Err(Error::usage(
                    "--approve-rehire needs --reason",
                    "say why this leaver is coming back",
                ));
            }
            if approve_mass_change && reason.as_deref().is_none_or(|r| r.trim().is_empty()) {
                return Err(Error::usage(
                    "--approve-mass-change needs --reason",
                    "say why so many people are leaving",
                ));
            }
            let systems = ctx.systems()?;
            let mapping = match mapping {
                Some(p) => SystemsConfig::load(&p)?.import,
                None => systems.import.clone(),
            };
            let hr = read_hr_file(&file, &mapping)?;
            let people = hr.people;
            // Policies are loaded first: intended grants are recomputed with the import.
            let policies = ctx.policies(&systems)?;
            let mut store = ctx.store()?;
            if !dry_run {
                store.write(|tx| tx.sync_catalog(&systems.catalog, &super::actor()))?;
            }
            let approvals = crate::import::Approvals {
                mass_change: reason.as_deref().filter(|_| approve_mass_change),
                rehires: &approve_rehire,
                rehire_reason: reason.as_deref(),
                force_older: reason.as_deref().filter(|_| force_older),
            };
            let report = import_feed(
                &mut store,
                &people,
                Some(&policies),
                &super::actor(),
                dry_run,
                &systems.guard,
                &approvals,
                &FeedOptions {
                    snapshot,
                    as_of: hr.as_of,
                },
            )?;
            if ctx.json {
                ctx.print_json(&report)?;
            } else {
                println!(
                    "{}{} rows: {} created, {} updated, {} unchanged",
                    if dry_run { "dry run: " } else { "" },
                    report.rows,
                    report.created,
                    report.updated,
                    report.unchanged
                );
                if !dry_run {
                    println!(
                        "intended grants: {} added, {} withdrawn",
                        report.grants_added, report.grants_removed
                    );
                }
                match (&report.as_of, &report.older_than) {
                    (None, _) => println!(
                        "the export's age could not be judged: it has no generation time (a `# generated: TIME` line or a generated_at column) and no updated_at column"
                    ),
                    (Some(a), Some(last)) => println!(
                        "forced: this export (as of {}) is older than the last one imported (as of {last})",
                        a.at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
                    ),
                    _ => {}
                }
                if !report.left_missing.is_empty() {
                    println!(
                        "{} {} missing from the snapshot: {} leavers",
                        report.left_missing.len(),
                        if report.left_missing.len() == 1 {
                            "person"
                        } else {
                            "people"
                        },
                        if dry_run { "would become" } else { "became" }
                    );
                }
                for r in &report.rehires {
                    println!(
                        "rehire {} ({}): {}{}",
                        r.person,
                        r.name,
                        if r.applied { "applied: " } else { "" },
                        r.why
                    );
                }
            }
            Ok(0)
        }
        PeopleCmd::List { filter, limit, all } => {
            let store = ctx.store()?;
            let needle = filter.as_deref().map(str::to_lowercase);
            let people: Vec<Person> = store
                .all_people()?
                .into_iter()
                .filter(|p| match &needle {
                    None => true,
                    Some(n) => [
                        &p.hris_id,
                        &p.given_name,
                        &p.family_name,
                        &p.email,
                        &p.department,
                    ]
                    .iter()
                    .any(|f| f.to_lowercase().contains(n.as_str())),
                })
                .collect();
            if ctx.json {
                // Never cut: scripts get every match.
                ctx.print_json(&people)?;
            } else {
                let shown = if all {
                    people.len()
                } else {
                    limit.min(people.len())
                };
                for p in &people[..shown] {
                    println!(
                        "{} {} {} {} {}",
                        super::pad(&p.hris_id, 10),
                        super::pad(&format!("{} {}", p.given_name, p.family_name), 28),
                        super::pad(&p.email, 32),
                        super::pad(&p.department, 16),
                        p.status
                    );
                }
                super::say_cut(shown, people.len(), "people");
            }
            Ok(0)
        }
        PeopleCmd::Show { person } => {
            let store = ctx.store()?;
            let p = store.find_person(&person)?.ok_or_else(|| {
                Error::usage(
                    format!("no person with HRIS id or email {person:?}"),
                    "see `accessdesk people list`",
                )
            })?;
            let grants = store.intended_for(&p.hris_id)?;
            if ctx.json {
                let g: Vec<_> = grants.iter().map(|g| serde_json::json!({"entitlement": g.entitlement, "rule": g.rule, "requires_approval": g.requires_approval, "expires_at": g.expires_at})).collect();
                ctx.print_json(&serde_json::json!({"person": p, "intended": g}))?;
            } else {
                println!(
                    "{} {} <{}>  {}  {}  {}",
                    p.given_name, p.family_name, p.email, p.hris_id, p.department, p.status
                );
                for g in grants {
                    println!("  {}  (rule {})", g.entitlement, g.rule);
                }
            }
            Ok(0)
        }
    }
}
