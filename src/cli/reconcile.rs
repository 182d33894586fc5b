//! `accessdesk observe|reconcile|findings`: read what each system really holds, classify
//! the drift, and remediate it.

use super::{Ctx, FindingsCmd, FindingsTarget};
use crate::config::SystemsConfig;
use crate::engine::observe::{Observer, Progress, SystemRead, observe_all, run_for};
use crate::engine::reconcile::{Class, Reconciled, reconcile_run};
use crate::store::Store;
use crate::store::reconcile::{FindingFilter, FindingRow};
use crate::{Error, Result};
use serde::Serialize;
use std::collections::HashMap;
use std::io::IsTerminal;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Observe (resuming an interrupted run over the same systems unless `fresh`), then
/// correlate and classify. Returns the reconciled run.
fn observe_and_reconcile(
    ctx: &Ctx,
    cfg: &SystemsConfig,
    system: Option<&str>,
    fresh: bool,
) -> Result<Reconciled> {
    let actor = super::actor();
    let mut store = ctx.store()?;
    let systems: Vec<String> = match system {
        Some(s) => {
            if !cfg.catalog.systems.contains_key(s) {
                return Err(Error::usage(
                    format!("no system named {s:?}"),
                    "see `accessdesk system list`",
                ));
            }
            vec![s.to_string()]
        }
        None => cfg.catalog.systems.keys().cloned().collect(),
    };
    store.write(|tx| tx.sync_catalog(&cfg.catalog, &actor))?;
    let (run, resumed) = run_for(&mut store, &systems, system, fresh, &actor)?;
    if resumed {
        eprintln!("resuming observation run {run} from its checkpoints (--fresh starts over)");
    }
    let (engine, problems) = super::engine::build_engine(cfg, ctx.store()?)?;
    let adapters: HashMap<String, Arc<dyn crate::adapters::Adapter>> = systems
        .iter()
        .filter_map(|s| engine.adapter(s).map(|a| (s.clone(), a.clone())))
        .collect();
    let unavailable: HashMap<String, String> = problems
        .iter()
        .map(|p| (p.system.clone(), p.reason.clone()))
        .collect();
    let store = Arc::new(Mutex::new(store));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::io("starting the async runtime", e))?;
    let tty = std::io::stderr().is_terminal();
    let last = Mutex::new(HashMap::<String, Instant>::new());
    let progress = move |p: &Progress| {
        let mut last = last.lock().unwrap_or_else(|e| e.into_inner());
        let every = Duration::from_secs(if tty { 1 } else { 5 });
        let due = last.get(&p.system).is_none_or(|t| t.elapsed() >= every);
        if !due && p.phase != "done" {
            return;
        }
        last.insert(p.system.clone(), Instant::now());
        let total = p.expected.map(|e| format!(" of ~{e}")).unwrap_or_default();
        let eta = match (p.phase.as_str(), p.eta_secs) {
            ("done", _) => "done".to_string(),
            (_, Some(s)) => format!(
                "ETA {}",
                crate::text::duration_short(Duration::from_secs_f64(s))
            ),
            (_, None) => "ETA measuring".to_string(),
        };
        eprintln!(
            "observe {}: {} accounts, {} memberships{total} objects ({}, {eta})",
            p.system, p.accounts, p.memberships, p.phase
        );
    };
    let observer = Observer {
        store: &store,
        adapters: &adapters,
        catalog: &cfg.catalog,
        unavailable: &unavailable,
        actor: &actor,
    };
    let reads: Vec<SystemRead> = rt.block_on(observe_all(&observer, run, &systems, &progress))?;
    drop(adapters);
    drop(engine);
    let mut store = Arc::try_unwrap(store)
        .map_err(|_| Error::Failed("observation still running".into()))?
        .into_inner()
        .unwrap_or_else(|e| e.into_inner());
    for r in reads.iter().filter(|r| !r.complete) {
        eprintln!(
            "warning: {} was not read in full ({}); no conclusions are drawn from what was not read. Run again to resume",
            r.system,
            r.error.as_deref().unwrap_or("stopped")
        );
    }
    reconcile_run(&mut store, &cfg.catalog, run, &actor)
}

/// The JSON shape of `reconcile --json`.
#[derive(Debug, Serialize)]
struct ReconcileJson {
    run: i64,
    complete: bool,
    systems: Vec<SystemJson>,
    findings: Vec<FindingJson>,
}

#[derive(Debug, Serialize)]
struct SystemJson {
    system: String,
    complete: bool,
    accounts: i64,
    memberships: i64,
    observed_at: Option<String>,
}

#[derive(Debug, Serialize)]
struct FindingJson {
    id: i64,
    class: String,
    severity: String,
    system: String,
    person: Option<String>,
    account: Option<String>,
    entitlement: Option<String>,
    detail: String,
    status: String,
}

fn finding_json(f: &FindingRow) -> FindingJson {
    FindingJson {
        id: f.id,
        class: f.class.clone(),
        severity: f.severity.clone(),
        system: f.system.clone(),
        person: f.person.clone(),
        account: f.account.clone(),
        entitlement: f.entitlement.clone(),
        detail: f.detail.clone(),
        status: f.status.clone(),
    }
}

/// `accessdesk observe`.
pub fn observe(ctx: &Ctx, system: Option<String>, fresh: bool) -> Result<i32> {
    let cfg = ctx.systems()?;
    let r = observe_and_reconcile(ctx, &cfg, system.as_deref(), fresh)?;
    if ctx.json {
        ctx.print_json(&r)?;
    } else {
        print_reads(&r);
        println!(
            "\n{} findings; see `accessdesk findings list --run {}`",
            r.findings, r.run
        );
    }
    Ok(if r.complete { 0 } else { 1 })
}

fn print_reads(r: &Reconciled) {
    println!(
        "Observation run {} ({})",
        r.run,
        if r.complete { "complete" } else { "INCOMPLETE" }
    );
    for s in &r.systems {
        println!(
            "  {:<16} {:>9} accounts {:>10} memberships  {}",
            s.system,
            s.accounts,
            s.memberships,
            if s.complete {
                format!("observed {}", s.observed_at.as_deref().unwrap_or("-"))
            } else {
                format!("incomplete: {}", s.error.as_deref().unwrap_or("stopped"))
            }
        );
    }
}

/// `accessdesk reconcile`: observe + correlate + classify. Exit 0 no findings, 3
/// findings, 1 failure (including a read that was not complete).
pub fn reconcile(ctx: &Ctx, system: Option<String>, fresh: bool) -> Result<i32> {
    let cfg = ctx.systems()?;
    let r = observe_and_reconcile(ctx, &cfg, system.as_deref(), fresh)?;
    let store = ctx.store()?;
    let findings = store.findings(&FindingFilter {
        run: Some(r.run),
        open_only: true,
        ..Default::default()
    })?;
    if ctx.json {
        ctx.print_json(&ReconcileJson {
            run: r.run,
            complete: r.complete,
            systems: r
                .systems
                .iter()
                .map(|s| SystemJson {
                    system: s.system.clone(),
                    complete: s.complete,
                    accounts: s.accounts,
                    memberships: s.memberships,
                    observed_at: s.observed_at.clone(),
                })
                .collect(),
            findings: findings.iter().map(finding_json).collect(),
        })?;
    } else {
        print_reads(&r);
        println!();
        print_findings(&findings, usize::MAX);
    }
    Ok(if !r.complete {
        1
    } else if findings.is_empty() {
        0
    } else {
        3
    })
}

fn print_findings(findings: &[FindingRow], limit: usize) {
    if findings.is_empty() {
        println!("No findings: what the systems hold matches intended access.");
        return;
    }
    let mut by_class: std::collections::BTreeMap<(i64, &str), usize> = Default::default();
    for f in findings {
        let order = Class::parse(&f.class).map_or(99, |c| c as i64);
        *by_class.entry((order, f.class.as_str())).or_default() += 1;
    }
    let summary: Vec<String> = by_class
        .iter()
        .map(|((_, c), n)| format!("{n} {c}"))
        .collect();
    println!("{} findings: {}", findings.len(), summary.join(", "));
    println!();
    for f in findings.iter().take(limit) {
        println!(
            "  #{:<6} {:<8} {:<19} {:<12} {}",
            f.id,
            f.severity,
            f.class,
            crate::text::cut(&f.system, 12),
            f.detail
        );
        if f.status != "open" {
            println!(
                "           {} by {} {}{}",
                f.status,
                f.decided_by.as_deref().unwrap_or("-"),
                f.decided_at.as_deref().unwrap_or(""),
                f.reason
                    .as_deref()
                    .map(|r| format!(": {r}"))
                    .unwrap_or_default()
            );
        }
    }
    if findings.len() > limit {
        println!(
            "\n  … {} more (--all shows every finding)",
            findings.len() - limit
        );
    }
}

/// Which findings a command acts on: one id, or a class × system of the newest run.
fn select(
    store: &Store,
    id: Option<i64>,
    class: Option<String>,
    system: Option<String>,
    run: Option<i64>,
) -> Result<Vec<FindingRow>> {
    if id.is_none() && class.is_none() {
        return Err(Error::usage(
            "name a finding id, or --class (with --system to narrow it)",
            "see `accessdesk findings list`",
        ));
    }
    if let Some(c) = &class
        && Class::parse(c).is_none()
    {
        return Err(Error::usage(
            format!("unknown finding class {c:?}"),
            format!(
                "one of: {}",
                Class::ALL
                    .iter()
                    .map(|c| c.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ));
    }
    let run = match (id, run) {
        (Some(_), r) => r,
        (None, Some(r)) => Some(r),
        (None, None) => store.latest_run()?,
    };
    let found = store.findings(&FindingFilter {
        id,
        run,
        class,
        system,
        open_only: id.is_none(),
    })?;
    if found.is_empty() {
        return Err(Error::usage(
            "no finding matches",
            "see `accessdesk findings list`",
        ));
    }
    Ok(found)
}

/// Show what a bulk action touches and ask (unless --yes or a single finding).
fn confirm(found: &[FindingRow], verb: &str, yes: bool) -> Result<bool> {
    if found.len() == 1 || yes {
        return Ok(true);
    }
    let mut systems: std::collections::BTreeMap<&str, usize> = Default::default();
    let mut people = std::collections::BTreeSet::new();
    for f in found {
        *systems.entry(f.system.as_str()).or_default() += 1;
        if let Some(p) = &f.person {
            people.insert(p.as_str());
        }
    }
    eprintln!(
        "{verb} {} findings: {} people, {}",
        found.len(),
        people.len(),
        systems
            .iter()
            .map(|(s, n)| format!("{n} in {s}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    if !std::io::stdin().is_terminal() {
        return Err(Error::usage(
            format!("{verb} {} findings needs confirmation", found.len()),
            "re-run with --yes to confirm in a script",
        ));
    }
    eprint!("Proceed? [y/N] ");
    let mut line = String::new();
    std::io::stdin()
        .read_line(&mut line)
        .map_err(|e| Error::io("reading the answer", e))?;
    Ok(matches!(line.trim(), "y" | "Y" | "yes"))
}

pub fn findings(ctx: &Ctx, cmd: FindingsCmd) -> Result<i32> {
    let actor = super::actor();
    let mut store = ctx.store()?;
    match cmd {
        FindingsCmd::List {
            run,
            class,
            system,
            all,
            open,
        } => {
            let run = match run {
                Some(r) => Some(r),
                None => store.latest_run()?,
            };
            let Some(run) = run else {
                if ctx.json {
                    ctx.print_json(&Vec::<FindingJson>::new())?;
                } else {
                    println!("No observation yet: run `accessdesk reconcile`.");
                }
                return Ok(0);
            };
            let found = store.findings(&FindingFilter {
                run: Some(run),
                class,
                system,
                open_only: open,
                ..Default::default()
            })?;
            if ctx.json {
                ctx.print_json(&found.iter().map(finding_json).collect::<Vec<_>>())?;
            } else {
                println!("Run {run}:");
                print_findings(&found, if all { usize::MAX } else { 50 });
            }
            Ok(0)
        }
        FindingsCmd::Enforce { target } => {
            let cfg = ctx.systems()?;
            let Some(found) = chosen(&store, target, "enforce")? else {
                return Ok(1);
            };
            let out = crate::engine::findings::enforce(&mut store, &cfg.catalog, &found, &actor)?;
            report(
                ctx,
                &out,
                "`accessdesk run` carries out the queued operations",
            )
        }
        FindingsCmd::Accept {
            target,
            reason,
            until,
        } => {
            let Some(found) = chosen(&store, target, "accept")? else {
                return Ok(1);
            };
            let out = crate::engine::findings::accept(
                &mut store,
                &found,
                reason.as_deref().unwrap_or(""),
                &until,
                &actor,
            )?;
            report(ctx, &out, "")
        }
        FindingsCmd::Ignore { target, reason } => {
            let Some(found) = chosen(&store, target, "ignore")? else {
                return Ok(1);
            };
            let out =
                crate::engine::findings::ignore(&mut store, &found, reason.as_deref(), &actor)?;
            report(ctx, &out, "")
        }
    }
}

/// The findings `t` names, once confirmed (None: the admin said no).
fn chosen(store: &Store, t: FindingsTarget, verb: &str) -> Result<Option<Vec<FindingRow>>> {
    let found = select(store, t.id, t.class, t.system, t.run)?;
    if !confirm(&found, verb, t.yes)? {
        println!("nothing done");
        return Ok(None);
    }
    Ok(Some(found))
}

fn report(ctx: &Ctx, out: &[crate::engine::findings::Outcome], next: &str) -> Result<i32> {
    let refused = out
        .iter()
        .filter(|o| o.note.is_some() && o.ops.is_empty() && o.status == "open")
        .count();
    if ctx.json {
        ctx.print_json(&out)?;
    } else {
        for o in out {
            match &o.note {
                Some(n) => println!("  #{} {}: {} ({n})", o.finding, o.class, o.status),
                None if o.ops.is_empty() => println!("  #{} {}: {}", o.finding, o.class, o.status),
                None => println!(
                    "  #{} {}: {}, queued {}",
                    o.finding,
                    o.class,
                    o.status,
                    o.ops
                        .iter()
                        .map(|i| format!("#{i}"))
                        .collect::<Vec<_>>()
                        .join(" ")
                ),
            }
        }
        if !next.is_empty() && out.iter().any(|o| !o.ops.is_empty()) {
            println!("{next}");
        }
    }
    Ok(if refused > 0 { 1 } else { 0 })
}
