//! Scheduled reconciliation in serve: each system with `reconcile_every` in systems.toml
//! is observed through the engine's adapters (sharing the workers' rate limiters) and
//! reconciled whenever its last observation run is that old. Findings wait for an admin
//! (the console's Reconcile view, `accessdesk findings`); nothing is enforced on its own.
//!
//! Events from a system (Okta event hooks, GitHub and Slack membership events) arrive as
//! [`Nudge`]s naming an account: that one account and its memberships are read at once
//! (`observe::look_at_account`, a couple of requests). When they read as the store holds
//! them (the echo of accessdesk's own change) nothing more happens; otherwise the system
//! is read in full and reconciled at once, coalesced with any other nudge for it, so
//! drift made by hand is a finding within seconds.

use crate::config::Catalog;
use crate::engine::observe::{Observer, observe_all, run_for};
use crate::engine::reconcile::reconcile_run;
use crate::engine::workers::Engine;
use crate::store::Store;
use crate::{Error, Result};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// The systems to reconcile on a schedule, and how often.
pub fn schedule_of(catalog: &Catalog) -> Vec<(String, Duration)> {
    catalog
        .systems
        .iter()
        .filter_map(|(name, e)| e.reconcile_every.map(|d| (name.clone(), d)))
        .collect()
}

/// Observe and reconcile `system` once; returns the run id and how many findings it has.
pub async fn reconcile_once(
    engine: &Arc<Engine>,
    db: &Path,
    catalog: &Arc<Catalog>,
    system: &str,
    actor: &str,
) -> Result<(i64, usize)> {
    let want = vec![system.to_string()];
    let (db2, catalog2, actor2, want2) = (
        db.to_path_buf(),
        catalog.clone(),
        actor.to_string(),
        want.clone(),
    );
    let (store, run) = tokio::task::spawn_blocking(move || -> Result<(Store, i64)> {
        let mut store = Store::open(&db2)?;
        store.write(|tx| tx.sync_catalog(&catalog2, &actor2))?;
        let (run, _) = run_for(
            &mut store,
            &want2,
            want2.first().map(String::as_str),
            true,
            &actor2,
        )?;
        Ok((store, run))
    })
    .await
    .map_err(|e| Error::Failed(format!("starting a scheduled observation: {e}")))??;
    let adapters: HashMap<String, Arc<dyn crate::adapters::Adapter>> = engine
        .adapter(system)
        .map(|a| (system.to_string(), a.clone()))
        .into_iter()
        .collect();
    let unavailable: HashMap<String, String> = if adapters.is_empty() {
        HashMap::from([(
            system.to_string(),
            format!("{system}: serve has no adapter for it (see its credential)"),
        )])
    } else {
        HashMap::new()
    };
    let store = Arc::new(Mutex::new(store));
    let observer = Observer {
        store: &store,
        adapters: &adapters,
        catalog,
        unavailable: &unavailable,
        actor,
    };
    observe_all(&observer, run, &want, &|_| {}).await?;
    let (catalog2, actor2) = (catalog.clone(), actor.to_string());
    tokio::task::spawn_blocking(move || -> Result<(i64, usize)> {
        let mut store = store.lock().unwrap_or_else(|p| p.into_inner());
        let r = reconcile_run(&mut store, &catalog2, run, &actor2)?;
        Ok((run, r.findings))
    })
    .await
    .map_err(|e| Error::Failed(format!("reconciling a scheduled observation: {e}")))?
}

/// A system reported a change: in `account` (its id or login there) when the event
/// named one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Nudge {
    pub system: String,
    pub account: Option<String>,
    pub why: String,
}

/// Look at a nudge's account: None when it reads as the store holds it (no reconcile
/// needed), else why the system needs a full read.
async fn needs_full_read(engine: &Arc<Engine>, db: &Path, n: &Nudge) -> Option<String> {
    use crate::engine::observe::{Look, look_at_account};
    let Some(account) = &n.account else {
        return Some(n.why.clone());
    };
    let Some(adapter) = engine.adapter(&n.system).cloned() else {
        return Some(format!(
            "{}: serve has no adapter to look at {account}",
            n.system
        ));
    };
    let db = db.to_path_buf();
    let store = match tokio::task::spawn_blocking(move || Store::open(&db)).await {
        Ok(Ok(s)) => Mutex::new(s),
        Ok(Err(e)) => return Some(format!("opening the store: {e}")),
        Err(e) => return Some(format!("opening the store: {e}")),
    };
    let look = tokio::time::timeout(
        Duration::from_secs(60),
        look_at_account(&store, &adapter, &n.system, account),
    )
    .await;
    match look {
        Ok(Ok(Look::Unchanged)) => {
            tracing::info!(system = %n.system, account = %account, event = %n.why, "targeted observe: the account reads as accessdesk holds it; nothing to reconcile");
            None
        }
        Ok(Ok(Look::Changed(why))) => {
            tracing::info!(system = %n.system, account = %account, event = %n.why, change = %why, "targeted observe: a change; reconciling the system");
            Some(format!("{} ({why})", n.why))
        }
        Ok(Err(e)) => Some(format!("{}: looking at {account} failed: {e}", n.why)),
        Err(_) => Some(format!("{}: looking at {account} took over 60 s", n.why)),
    }
}

/// Run each scheduled system's reconciliation when it is due, until `stop`. The first
/// runs come one interval after serve starts. A system named on `nudges` (a webhook saw a
/// change made in it) has the account looked at, and when that finds a change it is
/// reconciled as soon as the current run ends; nudges that arrive meanwhile are one run.
pub async fn run(
    engine: Arc<Engine>,
    db: PathBuf,
    catalog: Arc<Catalog>,
    schedule: Vec<(String, Duration)>,
    actor: String,
    mut nudges: tokio::sync::mpsc::UnboundedReceiver<Nudge>,
    mut stop: watch::Receiver<bool>,
) {
    // Looks run beside the loop; those that find a change come back as systems to read.
    let (changed_tx, mut changed) = tokio::sync::mpsc::unbounded_channel::<(String, String)>();
    let look = |n: Nudge| {
        let (engine, db, tx) = (engine.clone(), db.clone(), changed_tx.clone());
        tokio::spawn(async move {
            if let Some(why) = needs_full_read(&engine, &db, &n).await {
                let _ = tx.send((n.system, why));
            }
        });
    };
    let start = Instant::now();
    let every: HashMap<String, Duration> = schedule.iter().cloned().collect();
    let mut next: HashMap<String, Instant> = schedule
        .iter()
        .map(|(s, every)| (s.clone(), start + *every))
        .collect();
    let tick = schedule
        .iter()
        .map(|(_, d)| *d / 4)
        .min()
        .unwrap_or(Duration::from_secs(60))
        .clamp(Duration::from_millis(200), Duration::from_secs(60));
    let mut nudges_open = true;
    let mut nudged: HashMap<String, String> = HashMap::new();
    loop {
        tokio::select! {
            _ = stop.wait_for(|s| *s) => return,
            _ = tokio::time::sleep(tick) => {}
            n = nudges.recv(), if nudges_open => match n {
                Some(n) => look(n),
                None => nudges_open = false,
            },
            Some((system, why)) = changed.recv() => {
                next.insert(system.clone(), Instant::now());
                nudged.insert(system, why);
            }
        }
        while let Ok(n) = nudges.try_recv() {
            look(n);
        }
        while let Ok((system, why)) = changed.try_recv() {
            next.insert(system.clone(), Instant::now());
            nudged.insert(system, why);
        }
        let due: Vec<String> = next
            .iter()
            .filter(|(_, t)| Instant::now() >= **t)
            .map(|(s, _)| s.clone())
            .collect();
        for system in due {
            let began = Instant::now();
            let why = match nudged.remove(&system) {
                Some(why) => format!("an event reported a change in it: {why}"),
                None => "its schedule".to_string(),
            };
            match reconcile_once(&engine, &db, &catalog, &system, &actor).await {
                Ok((run, findings)) => tracing::info!(
                    system = %system,
                    run,
                    findings,
                    why,
                    secs = began.elapsed().as_secs_f64(),
                    "scheduled reconciliation"
                ),
                Err(e) => {
                    tracing::warn!(system = %system, error = %e, "reconciliation failed")
                }
            }
            match every.get(&system) {
                Some(d) => next.insert(system.clone(), Instant::now() + *d),
                None => next.remove(&system),
            };
            if *stop.borrow() {
                return;
            }
        }
    }
}
