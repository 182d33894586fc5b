//! `accessdesk plan|apply|run|queue|approvals`.

use super::{ActArgs, ApprovalsCmd, Ctx, QueueCmd};
use crate::adapters::http::Timeouts;
use crate::config::SystemsConfig;
use crate::engine::admin::{self, Action};
use crate::engine::apply::{ApplyReport, apply_plan, make_plan};
use crate::engine::plan::Scope;
use crate::engine::workers::{Engine, EngineConfig, RunSummary, Unavailable};
use crate::model::OperationStatus;
use crate::store::Store;
use crate::{Error, Result};
use serde::Serialize;
use std::sync::{Arc, Mutex};

pub fn plan(ctx: &Ctx, system: Option<String>, person: Option<String>, all: bool) -> Result<i32> {
    let cfg = ctx.systems()?;
    let mut store = ctx.store()?;
    if let Some(s) = &system
        && !cfg.catalog.systems.contains_key(s)
    {
        return Err(Error::usage(
            format!("no system named {s:?}"),
            "see `accessdesk system list`",
        ));
    }
    let person = match person {
        None => None,
        Some(p) => Some(
            store
                .find_person(&p)?
                .ok_or_else(|| {
                    Error::usage(format!("no person {p:?}"), "give an HRIS id or work email")
                })?
                .hris_id,
        ),
    };
    let scope = Scope { system, person };
    store.write(|tx| tx.sync_catalog(&cfg.catalog, &super::actor()))?;
    let plan = make_plan(
        &mut store,
        &cfg.catalog,
        &cfg.guard,
        &scope,
        &super::actor(),
    )?;
    if ctx.json {
        ctx.print_json(&plan)?;
        return Ok(0);
    }
    println!("Plan {}: {} operations", plan.id, plan.ops.len());
    if plan.ops.is_empty() {
        println!("\nNothing to do: actual access matches intended access (as last observed).");
        return Ok(0);
    }
    println!("\n  {:<16} {:<20} {:>8}", "system", "operation", "count");
    for ((sys, kind), n) in plan.counts() {
        println!("  {sys:<16} {kind:<20} {n:>8}");
    }
    println!();
    let shown = if all {
        plan.ops.len()
    } else {
        plan.ops.len().min(50)
    };
    let mut last_person = None;
    for o in &plan.ops[..shown] {
        if last_person.as_deref() != Some(&*o.person_id) {
            println!("  {}", o.person_id);
            last_person = Some(o.person_id.to_string());
        }
        let sign = match o.kind {
            crate::model::OperationKind::RemoveMembership
            | crate::model::OperationKind::Deactivate => "-",
            crate::model::OperationKind::UpdateAttributes => "~",
            _ => "+",
        };
        let note = match (o.requires_approval, o.not_before) {
            _ if o.detail.is_some() => format!("  {}", o.detail.as_deref().unwrap_or("")),
            (true, _) => "  (needs approval)".to_string(),
            (false, Some(t)) => format!(
                "  (scheduled: {}, the day after their end date)",
                t.format("%Y-%m-%d %H:%M UTC")
            ),
            _ => String::new(),
        };
        println!(
            "    {sign} {:<18} {:<12} {}{note}",
            o.kind.as_str(),
            o.system,
            o.entitlement.as_deref().unwrap_or(""),
        );
    }
    if shown < plan.ops.len() {
        println!(
            "    ... and {} more (--all lists them)",
            plan.ops.len() - shown
        );
    }
    if let Some(r) = &plan.held_reason {
        println!("\nHELD by the mass-change guard: {r}");
        println!(
            "Review it, then: accessdesk apply {} --approve-mass-change --reason \"...\"",
            plan.id
        );
    } else {
        println!("\nTo apply exactly this plan: accessdesk apply {}", plan.id);
    }
    Ok(0)
}

/// Build the engine from systems.toml: one adapter per system, credentials from the keychain.
/// Systems whose adapter cannot be built are reported; their operations stay queued.
pub fn build_engine(cfg: &SystemsConfig, store: Store) -> Result<(Arc<Engine>, Vec<Unavailable>)> {
    let (engine, problems) = Engine::from_config(
        cfg,
        Arc::new(Mutex::new(store)),
        &Secrets::open(),
        Timeouts::default(),
        EngineConfig {
            actor: super::actor(),
            ..Default::default()
        },
    );
    Ok((Arc::new(engine), problems))
}

/// The keychain, or (when none can be opened) environment variables only.
enum Secrets {
    Keychain(crate::secrets::Keychain),
    EnvOnly(String),
}

impl Secrets {
    /// A headless server may hold every credential in env:VAR and have no keychain at all.
    fn open() -> Secrets {
        match crate::secrets::Keychain::from_env() {
            Ok(k) => Secrets::Keychain(k),
            Err(e) => Secrets::EnvOnly(e.to_string()),
        }
    }
}

impl crate::adapters::registry::SecretSource for Secrets {
    fn resolve(
        &self,
        cred: &crate::config::systems::CredentialRef,
    ) -> Result<crate::secrets::Secret> {
        use crate::config::systems::CredentialRef;
        match (self, cred) {
            (Secrets::Keychain(k), c) => k.resolve(c),
            (Secrets::EnvOnly(_), CredentialRef::Env(var)) => std::env::var(var)
                .map(crate::secrets::Secret::new)
                .map_err(|_| Error::Secret {
                    name: format!("env:{var}"),
                    message: "the environment variable is not set".into(),
                    hint: format!("export {var}"),
                }),
            (Secrets::EnvOnly(why), CredentialRef::Keyring(name)) => Err(Error::Secret {
                name: format!("keyring:{name}"),
                message: format!("no keychain is available: {why}"),
                hint: "run inside a keychain session, or use credential = \"env:VAR\"".into(),
            }),
        }
    }
}

/// Every configured system whose credential cannot be resolved, and why.
pub fn preflight(cfg: &SystemsConfig) -> Vec<Unavailable> {
    use crate::adapters::registry::SecretSource;
    let secrets = Secrets::open();
    let mut problems = Vec::new();
    for (name, entry) in &cfg.catalog.systems {
        if let Some(cred) = &entry.credential
            && let Err(e) = secrets.resolve(cred)
        {
            problems.push(Unavailable::new(
                name,
                format!("system {name}: credential {cred} cannot be resolved: {e}"),
            ));
        }
    }
    problems
}

/// How many ids of unrun operations a report lists per system (the count is always there).
const NOT_RUN_IDS: usize = 20;

/// A system the run could not drive, and what it left waiting.
#[derive(Debug, Serialize)]
struct NotRun {
    system: String,
    reason: String,
    /// Its operations left queued (queued, waiting to retry, running, verifying).
    operations: u64,
    /// The first of them, oldest first.
    ids: Vec<i64>,
    /// How many more there are than `ids` lists.
    more: u64,
}

/// What `run` and `apply` report: what ran, and what could not.
#[derive(Debug, Serialize)]
struct RunReport {
    /// Whether the workers ran at all (false: a credential was missing; nothing ran).
    ran: bool,
    /// `apply` only: what the plan put on the queue.
    #[serde(skip_serializing_if = "Option::is_none")]
    applied: Option<ApplyReport>,
    #[serde(flatten)]
    summary: RunSummary,
    not_run: Vec<NotRun>,
}

fn not_run(store: &Store, problems: &[Unavailable]) -> Result<Vec<NotRun>> {
    problems
        .iter()
        .map(|p| {
            let (operations, ids) = store.waiting_ops(&p.system, NOT_RUN_IDS)?;
            Ok(NotRun {
                system: p.system.clone(),
                reason: p.reason.clone(),
                more: operations.saturating_sub(ids.len() as u64),
                operations,
                ids,
            })
        })
        .collect()
}

/// A missing credential stops `apply` and `run` (exit 1) before any work, naming the
/// system and the credential reference, rather than leaving operations queued behind a
/// success; with --json the same report is printed, with `ran: false`.
fn refuse_unresolved(ctx: &Ctx, cfg: &SystemsConfig) -> Result<()> {
    let problems = preflight(cfg);
    if problems.is_empty() {
        return Ok(());
    }
    if ctx.json {
        let store = ctx.store()?;
        ctx.print_json(&RunReport {
            ran: false,
            applied: None,
            summary: RunSummary::default(),
            not_run: not_run(&store, &problems)?,
        })?;
    }
    let reasons: Vec<String> = problems.iter().map(|p| p.reason.clone()).collect();
    Err(Error::Failed(format!(
        "{}; nothing was applied or run (set the credential with `accessdesk secret set NAME` or export the variable)",
        reasons.join("; ")
    )))
}

/// Run the queue until it settles. Exit 1 when an operation failed or was left unrun
/// because its system has no adapter.
fn drive(ctx: &Ctx, cfg: &SystemsConfig, applied: Option<ApplyReport>) -> Result<i32> {
    let store = ctx.store()?;
    let (engine, problems) = build_engine(cfg, store)?;
    for p in &problems {
        eprintln!("warning: {p}; its operations stay queued");
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::io("starting the async runtime", e))?;
    let summary = rt.block_on(engine.run_until_idle(None))?;
    drop(engine);
    let not_run = not_run(&ctx.store()?, &problems)?;
    let left: u64 = not_run.iter().map(|n| n.operations).sum();
    let failed = summary.failed > 0 || left > 0;
    if ctx.json {
        ctx.print_json(&RunReport {
            ran: true,
            applied,
            summary,
            not_run,
        })?;
    } else {
        println!(
            "run finished: {} succeeded, {} failed, {} blocked, {} retries, {} recovered after a restart",
            summary.succeeded, summary.failed, summary.blocked, summary.retried, summary.recovered
        );
        for n in not_run.iter().filter(|n| n.operations > 0) {
            println!(
                "not run: {} operation(s) for {} stay queued: {}",
                n.operations, n.system, n.reason
            );
        }
        if summary.failed > 0 {
            println!("see `accessdesk queue failures`");
        }
    }
    Ok(if failed { 1 } else { 0 })
}

pub fn apply(
    ctx: &Ctx,
    plan: &str,
    approve: bool,
    reason: Option<String>,
    no_run: bool,
) -> Result<i32> {
    let cfg = ctx.systems()?;
    let mut store = ctx.store()?;
    if approve && reason.as_deref().is_none_or(|r| r.trim().is_empty()) {
        return Err(Error::usage(
            "--approve-mass-change needs --reason",
            "say why this mass change is intended",
        ));
    }
    let approval = if approve { reason.as_deref() } else { None };
    if !no_run {
        refuse_unresolved(ctx, &cfg)?;
    }
    let report = apply_plan(&mut store, &cfg.catalog, plan, &super::actor(), approval)?;
    if !ctx.json {
        println!(
            "applied {}: {} queued, {} waiting for approval",
            report.plan, report.queued, report.pending_approval
        );
    }
    drop(store);
    if no_run {
        if ctx.json {
            ctx.print_json(&report)?;
        }
        return Ok(0);
    }
    drive(ctx, &cfg, Some(report))
}

pub fn run(ctx: &Ctx) -> Result<i32> {
    let cfg = ctx.systems()?;
    refuse_unresolved(ctx, &cfg)?;
    drive(ctx, &cfg, None)
}

pub fn queue(ctx: &Ctx, cmd: QueueCmd) -> Result<i32> {
    let mut store = ctx.store()?;
    match cmd {
        QueueCmd::List { status, limit, all } => {
            let statuses: Vec<OperationStatus> = if status.is_empty() {
                use OperationStatus::*;
                vec![
                    PendingApproval,
                    Scheduled,
                    Queued,
                    Running,
                    RetryWait,
                    Verifying,
                    Blocked,
                    Failed,
                ]
            } else {
                status
                    .iter()
                    .map(|s| {
                        s.parse::<OperationStatus>()
                            .map_err(|e| Error::usage(e, ""))
                    })
                    .collect::<Result<_>>()?
            };
            let ops = store.ops_with_status(&statuses, usize::MAX >> 1)?;
            if ctx.json {
                // Never cut: scripts get every match.
                ctx.print_json(&ops)?;
            } else {
                let total = ops.len();
                let shown = if all { total } else { limit.min(total) };
                for o in ops.into_iter().take(shown) {
                    println!(
                        "#{:<6} {:<16} {:<18} {:<12} {:<10} {:<28} {}",
                        o.id,
                        o.status.as_str(),
                        o.kind.as_str(),
                        o.system,
                        o.person_id,
                        o.entitlement.as_deref().unwrap_or("-"),
                        o.blocked_reason
                            .or(o.last_error_message)
                            .unwrap_or_default()
                    );
                }
                super::say_cut(shown, total, "operations");
            }
            let backlog = store.backlog_counts()?;
            let in_backlog: u64 = backlog.iter().map(|(_, n)| n).sum();
            if in_backlog > 0 && statuses.contains(&OperationStatus::Queued) {
                let per: Vec<String> = backlog.iter().map(|(s, n)| format!("{s} {n}")).collect();
                // Not cut silently: said on stderr, so --json output stays one document.
                eprintln!(
                    "and {in_backlog} more queued operations of applied plans ({}), not listed: they become rows as the workers reach them",
                    per.join(", ")
                );
            }
            Ok(0)
        }
        QueueCmd::Show { id } => {
            let op = store.op(id)?.ok_or_else(|| {
                Error::usage(format!("no operation #{id}"), "see `accessdesk queue list`")
            })?;
            let deps = store.dependencies_of(id)?;
            let mut stmt = store.conn().prepare(
                "SELECT attempt, started_at, finished_at, outcome, error_class, http_status, vendor_code, message, excerpt, request FROM op_attempts WHERE op_id = ?1 ORDER BY attempt",
            )?;
            let attempts: Vec<serde_json::Value> = stmt
                .query_map([id], |r| {
                    Ok(serde_json::json!({
                        "attempt": r.get::<_, i64>(0)?, "started_at": r.get::<_, String>(1)?, "finished_at": r.get::<_, Option<String>>(2)?,
                        "outcome": r.get::<_, Option<String>>(3)?, "class": r.get::<_, Option<String>>(4)?, "status": r.get::<_, Option<i64>>(5)?,
                        "code": r.get::<_, Option<String>>(6)?, "message": r.get::<_, Option<String>>(7)?, "response": r.get::<_, Option<String>>(8)?,
                        "request": r.get::<_, Option<String>>(9)?,
                    }))
                })?
                .collect::<rusqlite::Result<_>>()?;
            ctx.print_json(
                &serde_json::json!({"operation": op, "depends_on": deps, "attempts": attempts}),
            )?;
            Ok(0)
        }
        QueueCmd::Failures => {
            let groups = admin::failure_groups(&store)?;
            if ctx.json {
                let v: Vec<_> = groups.iter().map(|(rc, ops)| serde_json::json!({"key": rc.key(), "cause": rc, "count": ops.len(), "ops": ops.iter().map(|o| o.id).collect::<Vec<_>>()})).collect();
                ctx.print_json(&v)?;
            } else if groups.is_empty() {
                println!("no failed operations");
            } else {
                for (rc, ops) in &groups {
                    let msg = ops
                        .first()
                        .and_then(|o| o.last_error_message.clone())
                        .unwrap_or_default();
                    println!("{:>5} x {}  {}", ops.len(), rc.key(), msg);
                }
            }
            Ok(0)
        }
        QueueCmd::Retry(a) => act(ctx, &mut store, a, Action::Retry),
        QueueCmd::Skip(a) => act(ctx, &mut store, a, Action::Skip),
        QueueCmd::Cancel(a) => act(ctx, &mut store, a, Action::Cancel),
    }
}

fn act(ctx: &Ctx, store: &mut Store, a: ActArgs, action: Action) -> Result<i32> {
    let actor = super::actor();
    let n = match (a.id, a.group) {
        (Some(id), None) => usize::from(admin::act(store, id, action, &actor, &a.reason)?),
        (None, Some(g)) => admin::act_on_group(store, &g, action, &actor, &a.reason)?,
        _ => {
            return Err(Error::usage(
                "give an operation id or --group KEY",
                "see `accessdesk queue failures`",
            ));
        }
    };
    if ctx.json {
        ctx.print_json(&serde_json::json!({"changed": n}))?;
    } else {
        println!("{n} operation(s) changed");
    }
    Ok(if n == 0 { 1 } else { 0 })
}

pub fn approvals(ctx: &Ctx, cmd: ApprovalsCmd) -> Result<i32> {
    let mut store = ctx.store()?;
    match cmd {
        ApprovalsCmd::List { rejected } => {
            let p = if rejected {
                admin::rejected_approvals(&store)?
            } else {
                admin::pending_approvals(&store)?
            };
            if ctx.json {
                ctx.print_json(&p)?;
            } else if p.is_empty() {
                println!(
                    "no {} approvals",
                    if rejected {
                        "standing rejected"
                    } else {
                        "pending"
                    }
                );
            } else {
                for a in p {
                    println!(
                        "#{:<5} {:<10} {:<32} rule {:<20} requested {}",
                        a.id, a.person_id, a.entitlement, a.rule, a.requested_at
                    );
                }
            }
            Ok(0)
        }
        ApprovalsCmd::Approve { id, reason } => {
            admin::decide(&mut store, id, true, &super::actor(), &reason)?;
            println!("approved #{id}");
            Ok(0)
        }
        ApprovalsCmd::Reject { id, reason } => {
            admin::decide(&mut store, id, false, &super::actor(), &reason)?;
            println!(
                "rejected #{id}; it will not be asked for again until its rule or an attribute the rule reads changes (or `approvals reopen {id}`)"
            );
            Ok(0)
        }
        ApprovalsCmd::Reopen { id, reason } => {
            admin::reopen(&mut store, id, &super::actor(), &reason)?;
            println!("reopened #{id}: the next plan asks for it again");
            Ok(0)
        }
    }
}
