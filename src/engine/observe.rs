//! Observe: read every account and membership of a system through its adapter's
//! listings, page by page, within the vendor's rate limit (the adapter's limiter is the
//! one the workers share).
//!
//! A read goes through three phases, each paginated: `accounts` (every account),
//! `groups` (every group the system has, where the adapter can list them, so
//! memberships outside the catalogue are seen; else only the catalogue's), `members`
//! (who is in each group). After every page the page and the checkpoint (phase, group,
//! cursor) commit together, so an interrupted read resumes at the page it stopped on. A
//! read that fails leaves its system `incomplete`, and reconciliation draws no
//! conclusion from an incomplete read (engine/reconcile/).
//!
//! An account seen only in a group's member listing (it appeared while the read was
//! under way) is kept, marked late; reconciliation reports nothing about it until a
//! later read lists it.
//!
//! A targeted look ([`look_at_account`]) reads one account and its memberships, for an
//! event a system sent about it, and compares them with what the store holds: the echo
//! of accessdesk's own change matches and needs nothing more; anything else (an account
//! it has not seen, another state or other memberships, or one it cannot read) is drift
//! that a full read of the system must classify.

use crate::adapters::{Adapter, AdapterError, EntitlementTarget, RemoteAccount};
use crate::config::SystemEntry;
use crate::model::EntitlementKind;
use crate::store::Store;
use crate::store::reconcile::{Checkpoint, ObservedAccount};
use crate::{Error, Result};
use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Where a read is, for progress lines and the console.
#[derive(Debug, Clone, PartialEq)]
pub struct Progress {
    pub system: String,
    pub phase: String,
    pub accounts: i64,
    pub memberships: i64,
    /// Objects (accounts + memberships) the previous complete read found, if any: the
    /// expected total.
    pub expected: Option<i64>,
    /// Seconds left, estimated from objects per request so far and the rate the
    /// system's limiter allows now (its live headroom).
    pub eta_secs: Option<f64>,
}

/// How a system's read ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SystemRead {
    pub system: String,
    pub complete: bool,
    pub accounts: i64,
    pub memberships: i64,
    pub error: Option<String>,
}

fn lock(store: &Mutex<Store>) -> std::sync::MutexGuard<'_, Store> {
    match store.lock() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    }
}

/// The entitlement string a group of `system` goes by (`system:kind:name`).
pub fn entitlement_key(system: &str, kind: EntitlementKind, name: &str) -> String {
    format!("{system}:{kind}:{name}")
}

fn observed(a: &RemoteAccount, late: bool) -> ObservedAccount {
    ObservedAccount {
        external_id: a.external_id.clone(),
        login: a.login.clone(),
        email: a.email.clone(),
        active: a.active,
        hris_id: a.hris_id.clone(),
        attributes: a.attributes.clone(),
        late,
    }
}

/// Read one system in full (or resume its read in `run`), storing every page with its
/// checkpoint. Never returns a partial read as complete.
pub async fn observe_system(
    store: &Arc<Mutex<Store>>,
    adapter: &Arc<dyn Adapter>,
    entry: &SystemEntry,
    run: i64,
    progress: &(dyn Fn(&Progress) + Send + Sync),
) -> Result<SystemRead> {
    let system = entry.system.name.clone();
    let (mut cp, expected) = {
        let s = lock(store);
        let cp = s
            .checkpoints(run)?
            .into_iter()
            .find(|c| c.system == system)
            .ok_or_else(|| Error::Failed(format!("run {run} does not read system {system}")))?;
        let expected = s
            .last_complete_reads()?
            .into_iter()
            .find(|(sys, r, _)| *sys == system && *r != run)
            .and_then(|(_, r, _)| {
                s.checkpoints(r)
                    .ok()?
                    .into_iter()
                    .find(|c| c.system == system)
                    .map(|c| c.accounts + c.memberships)
            });
        (cp, expected)
    };
    if cp.status == "complete" {
        return Ok(SystemRead {
            system,
            complete: true,
            accounts: cp.accounts,
            memberships: cp.memberships,
            error: None,
        });
    }
    cp.status = "running".into();
    cp.error = None;
    let started = Instant::now();
    let pages_at_start = cp.pages;
    let objects_at_start = cp.accounts + cp.memberships;
    let report = |cp: &Checkpoint| {
        let done = cp.accounts + cp.memberships;
        let pages = (cp.pages - pages_at_start).max(1) as f64;
        let per_page = (done - objects_at_start).max(1) as f64 / pages;
        let eta_secs = expected.map(|total| {
            let left = (total - done).max(0) as f64;
            let requests = left / per_page.max(1.0);
            let snap = adapter.limiter().map(|l| l.snapshot());
            // The rate the vendor allows now: what is left of its window over the time
            // to its reset; failing that, the rate measured so far.
            let measured = pages / started.elapsed().as_secs_f64().max(0.001);
            let allowed = snap
                .and_then(|s| match (s.remaining, s.reset_in) {
                    (Some(rem), Some(reset)) if rem > 0 => {
                        Some(f64::from(rem) / reset.as_secs_f64().max(1.0))
                    }
                    _ => None,
                })
                .map_or(measured, |a| a.min(measured));
            requests / allowed.max(0.001)
        });
        progress(&Progress {
            system: cp.system.clone(),
            phase: cp.phase.clone(),
            accounts: cp.accounts,
            memberships: cp.memberships,
            expected,
            eta_secs,
        });
    };
    match read(store, adapter, entry, run, &mut cp, &report).await {
        Ok(()) => {
            cp.status = "complete".into();
            cp.phase = "done".into();
            cp.cursor = None;
            cp.observed_at = Some(crate::store::queue::ts(chrono::Utc::now()));
            lock(store).write(|tx| tx.save_checkpoint(run, &cp))?;
            report(&cp);
            Ok(SystemRead {
                system,
                complete: true,
                accounts: cp.accounts,
                memberships: cp.memberships,
                error: None,
            })
        }
        Err(e) => {
            let msg = e.to_string();
            cp.status = "incomplete".into();
            cp.error = Some(msg.clone());
            lock(store).write(|tx| tx.save_checkpoint(run, &cp))?;
            Ok(SystemRead {
                system,
                complete: false,
                accounts: cp.accounts,
                memberships: cp.memberships,
                error: Some(msg),
            })
        }
    }
}

/// Page retries on top of the adapter's own: a page that keeps failing ends the read
/// (incomplete), resumable from that page.
const PAGE_ATTEMPTS: u32 = 3;

async fn page<T, F, Fut>(system: &str, mut fetch: F) -> std::result::Result<T, AdapterError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = std::result::Result<T, AdapterError>>,
{
    let mut attempt = 0;
    loop {
        attempt += 1;
        match fetch().await {
            Ok(v) => return Ok(v),
            Err(e) if e.class.is_retryable() && attempt < PAGE_ATTEMPTS => {
                let wait = e
                    .class
                    .retry_after()
                    .unwrap_or(Duration::from_millis(200 * u64::from(attempt)));
                tracing::debug!(system, attempt, "observe: page failed, retrying: {e}");
                tokio::time::sleep(wait.min(Duration::from_secs(30))).await;
            }
            Err(e) => return Err(e),
        }
    }
}

async fn read(
    store: &Arc<Mutex<Store>>,
    adapter: &Arc<dyn Adapter>,
    entry: &SystemEntry,
    run: i64,
    cp: &mut Checkpoint,
    report: &(dyn Fn(&Checkpoint) + Send + Sync),
) -> Result<()> {
    let system = entry.system.name.clone();
    let adapter_err = |e: AdapterError| Error::Failed(e.to_string());
    if cp.phase == "accounts" {
        loop {
            let cursor = cp.cursor.clone();
            let p = page(&system, || adapter.list_accounts(cursor.clone()))
                .await
                .map_err(adapter_err)?;
            let accounts: Vec<ObservedAccount> =
                p.items.iter().map(|a| observed(a, false)).collect();
            cp.accounts += accounts.len() as i64;
            cp.pages += 1;
            cp.cursor = p.next.clone();
            if p.next.is_none() {
                cp.phase = "groups".into();
            }
            lock(store).write(|tx| tx.save_page(run, cp, &accounts, &[], &[]))?;
            report(cp);
            if p.next.is_none() {
                break;
            }
        }
    }
    if cp.phase == "groups" {
        // The catalogue's entitlements always; then every group the system lists.
        let catalogued: Vec<(String, String, bool)> = entry
            .entitlements
            .iter()
            .map(|((kind, name), e)| {
                (
                    entitlement_key(&system, *kind, name),
                    e.external_id.clone(),
                    true,
                )
            })
            .collect();
        if cp.cursor.is_none() {
            lock(store).write(|tx| tx.save_page(run, cp, &[], &catalogued, &[]))?;
        }
        let known_ids: HashSet<&str> = entry
            .entitlements
            .values()
            .map(|e| e.external_id.as_str())
            .collect();
        loop {
            let cursor = cp.cursor.clone();
            let listed = match adapter.capabilities().list_entitlements {
                true => page(&system, || adapter.list_entitlements(cursor.clone())).await,
                false => Err(AdapterError::unsupported(&system, "list entitlements")),
            };
            let p = match listed {
                Ok(p) => p,
                // Declared, yet this provider has no listing (a SCIM service without Groups).
                Err(e) if e.is_unsupported() => {
                    cp.all_groups = false;
                    cp.phase = "members".into();
                    cp.cursor = None;
                    cp.ent_index = 0;
                    lock(store).write(|tx| tx.save_checkpoint(run, cp))?;
                    break;
                }
                Err(e) => return Err(adapter_err(e)),
            };
            let groups: Vec<(String, String, bool)> = p
                .items
                .iter()
                .filter(|g| {
                    !entry.entitlements.contains_key(&(g.kind, g.name.clone()))
                        && !known_ids.contains(g.external_id.as_str())
                })
                .map(|g| {
                    (
                        entitlement_key(&system, g.kind, &g.name),
                        g.external_id.clone(),
                        false,
                    )
                })
                .collect();
            cp.pages += 1;
            cp.cursor = p.next.clone();
            if p.next.is_none() {
                cp.all_groups = true;
                cp.phase = "members".into();
                cp.ent_index = 0;
            }
            lock(store).write(|tx| tx.save_page(run, cp, &[], &groups, &[]))?;
            if p.next.is_none() {
                break;
            }
        }
    }
    if cp.phase == "members" {
        let groups = lock(store).observed_groups(run, &system)?;
        let mut listed: HashSet<String> = lock(store).observed_account_ids(run, &system)?;
        while (cp.ent_index as usize) < groups.len() {
            let (ent, ext, _) = &groups[cp.ent_index as usize];
            let target = group_target(ent, ext)?;
            let cursor = cp.cursor.clone();
            let result = page(&system, || adapter.list_members(&target, cursor.clone())).await;
            let p = match result {
                Ok(p) => p,
                // A catalogued group the system does not have: nobody is in it.
                Err(e) if e.class == crate::adapters::ErrorClass::NotFound => {
                    crate::adapters::Page {
                        items: Vec::new(),
                        next: None,
                    }
                }
                Err(e) => return Err(adapter_err(e)),
            };
            let late: Vec<ObservedAccount> = p
                .items
                .iter()
                .filter(|a| !listed.contains(&a.external_id))
                .map(|a| observed(a, true))
                .collect();
            for a in &late {
                listed.insert(a.external_id.clone());
            }
            let members: Vec<(String, String)> = p
                .items
                .iter()
                .map(|a| (ent.clone(), a.external_id.clone()))
                .collect();
            cp.memberships += members.len() as i64;
            cp.pages += 1;
            cp.cursor = p.next.clone();
            if p.next.is_none() {
                cp.ent_index += 1;
            }
            lock(store).write(|tx| tx.save_page(run, cp, &late, &[], &members))?;
            report(cp);
        }
        confirm_silent(store, adapter, &system, run, cp).await?;
    }
    Ok(())
}

/// An account listed before the groups were read may have vanished since (deleted while
/// the run read): its absence from the groups read after that would otherwise read as
/// access it lacks. The suspects are the accounts no group showed and those a group did
/// not show although policy grants it to their person (in steady state, none). Ask the
/// system about each; one it no longer has is marked gone (no finding is drawn from it),
/// one it still has is refreshed. Idempotent, so an interrupted confirmation simply runs
/// again on resume.
async fn confirm_silent(
    store: &Arc<Mutex<Store>>,
    adapter: &Arc<dyn Adapter>,
    system: &str,
    run: i64,
    cp: &mut Checkpoint,
) -> Result<()> {
    // Accounts no group showed, and accounts a group did not show though policy grants
    // it to their person: either may have been deleted while the groups were read.
    let suspects: std::collections::BTreeSet<String> = {
        let s = lock(store);
        let mut ids: std::collections::BTreeSet<String> =
            s.silent_accounts(run, system)?.into_iter().collect();
        ids.extend(s.accounts_short_of_intent(run, system)?);
        ids
    };
    let mut gone = Vec::new();
    for id in suspects {
        match page(system, || adapter.get_account(&id)).await {
            Ok(Some(a)) => {
                let fresh = [observed(&a, false)];
                lock(store).write(|tx| tx.save_page(run, cp, &fresh, &[], &[]))?;
            }
            Ok(None) => gone.push(id),
            Err(e) if e.class == crate::adapters::ErrorClass::NotFound => gone.push(id),
            Err(e) => return Err(Error::Failed(e.to_string())),
        }
    }
    if !gone.is_empty() {
        tracing::info!(
            system,
            n = gone.len(),
            "observe: accounts vanished during the read"
        );
        let n = lock(store).write(|tx| tx.mark_gone(run, system, &gone))?;
        cp.accounts -= n as i64;
        lock(store).write(|tx| tx.save_checkpoint(run, cp))?;
    }
    Ok(())
}

/// The adapter's target for a listed group (`system:kind:name` and its vendor id).
fn group_target(ent: &str, external_id: &str) -> Result<EntitlementTarget> {
    let r: crate::model::EntitlementRef = ent
        .parse()
        .map_err(|e: String| Error::Failed(format!("stored group {ent:?}: {e}")))?;
    Ok(EntitlementTarget {
        kind: r.kind,
        name: r.name,
        external_id: external_id.to_string(),
    })
}

/// Which run to read into: the newest when it covers exactly `systems` and did not finish
/// them (unless `fresh`), else a new one. Returns (run, resumed).
pub fn run_for(
    store: &mut Store,
    systems: &[String],
    scope: Option<&str>,
    fresh: bool,
    actor: &str,
) -> Result<(i64, bool)> {
    if !fresh && let Some(r) = store.latest_run()? {
        let cps = store.checkpoints(r)?;
        let mut have: Vec<&str> = cps.iter().map(|c| c.system.as_str()).collect();
        let mut want: Vec<&str> = systems.iter().map(String::as_str).collect();
        have.sort_unstable();
        want.sort_unstable();
        if have == want && cps.iter().any(|c| c.status != "complete") {
            return Ok((r, true));
        }
    }
    let id = store.write(|tx| tx.start_run(scope, systems, actor))?;
    Ok((id, false))
}

/// What observing needs besides the run: the store, each system's adapter (the engine's,
/// so reads share the workers' rate limiters), the catalogue, and why a system without
/// an adapter has none.
pub struct Observer<'a> {
    pub store: &'a Arc<Mutex<Store>>,
    pub adapters: &'a std::collections::HashMap<String, Arc<dyn Adapter>>,
    pub catalog: &'a crate::config::Catalog,
    pub unavailable: &'a std::collections::HashMap<String, String>,
    pub actor: &'a str,
}

/// Read `systems` into `run`, all at once (each within its own rate limit), then close
/// the run. A system without an adapter is marked incomplete with the reason. The CLI
/// and the console both observe through this.
pub async fn observe_all(
    o: &Observer<'_>,
    run: i64,
    systems: &[String],
    progress: &(dyn Fn(&Progress) + Send + Sync),
) -> Result<Vec<SystemRead>> {
    let Observer {
        store,
        adapters,
        catalog,
        unavailable,
        actor,
    } = *o;
    let mut tasks = Vec::new();
    for name in systems {
        let entry = catalog
            .systems
            .get(name)
            .ok_or_else(|| Error::Failed(format!("no system named {name:?}")))?
            .clone();
        let adapter = adapters.get(name).cloned();
        let why = unavailable.get(name).cloned();
        tasks.push(async move {
            match adapter {
                Some(a) => observe_system(store, &a, &entry, run, progress).await,
                None => {
                    let reason =
                        why.unwrap_or_else(|| format!("system {}: no adapter", entry.system.name));
                    let mut s = lock(store);
                    let mut cp = s
                        .checkpoints(run)?
                        .into_iter()
                        .find(|c| c.system == entry.system.name)
                        .ok_or_else(|| {
                            Error::Failed(format!("run {run} lost system {}", entry.system.name))
                        })?;
                    cp.status = "incomplete".into();
                    cp.error = Some(reason.clone());
                    s.write(|tx| tx.save_checkpoint(run, &cp))?;
                    Ok(SystemRead {
                        system: entry.system.name.clone(),
                        complete: false,
                        accounts: cp.accounts,
                        memberships: cp.memberships,
                        error: Some(reason),
                    })
                }
            }
        });
    }
    let mut out = Vec::new();
    for r in futures::future::join_all(tasks).await {
        out.push(r?);
    }
    lock(store).write(|tx| tx.finish_run(run, actor))?;
    Ok(out)
}

/// What a targeted look at one account found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Look {
    /// The account reads exactly as the store holds it (the echo of our own change).
    Unchanged,
    /// It differs, or could not be compared: why (the system needs a full read).
    Changed(String),
}

/// Read the account an event named (`account`: its id in the system, else its login) and
/// its memberships, and compare them with what the store holds for it. Only a positive
/// match is [`Look::Unchanged`]; a system never read in full, an account that cannot be
/// found or read, or any difference is [`Look::Changed`].
pub async fn look_at_account(
    store: &Mutex<Store>,
    adapter: &Arc<dyn Adapter>,
    system: &str,
    account: &str,
) -> Result<Look> {
    let changed = |why: String| Ok(Look::Changed(why));
    let read_before = lock(store)
        .last_complete_reads()?
        .into_iter()
        .any(|(s, _, _)| s == system);
    if !read_before {
        return changed(format!("{system} has not been read in full yet"));
    }
    let found = match adapter.get_account(account).await {
        Ok(Some(a)) => Some(a),
        Ok(None) | Err(_) => match adapter.get_account_by_login(account).await {
            Ok(a) => a,
            Err(e) => return changed(format!("reading {account:?} failed: {e}")),
        },
    };
    let Some(remote) = found else {
        return changed(format!(
            "{system} shows no account {account:?} by that id or login"
        ));
    };
    let memberships = match adapter.list_memberships(&remote.external_id).await {
        Ok(m) => m,
        Err(e) => {
            return changed(format!(
                "reading {}'s memberships failed: {e}",
                remote.login
            ));
        }
    };
    let mut now: Vec<String> = memberships
        .iter()
        .map(|m| entitlement_key(system, m.kind, &m.name))
        .collect();
    now.sort();
    now.dedup();
    let (held, have) = {
        let s = lock(store);
        let held = s.account_in(system, &remote.external_id, &remote.login)?;
        let have = match &held {
            Some(a) => s.access_of_account(system, &a.login)?,
            None => Vec::new(),
        };
        (held, have)
    };
    let Some(held) = held else {
        return changed(format!(
            "{} is an account accessdesk has not seen in {system}",
            remote.login
        ));
    };
    if held.active != remote.active {
        return changed(format!(
            "{} is {} in {system}; accessdesk holds it {}",
            remote.login,
            if remote.active { "active" } else { "inactive" },
            if held.active { "active" } else { "inactive" }
        ));
    }
    if now != have {
        let added: Vec<&String> = now.iter().filter(|e| !have.contains(e)).collect();
        let gone: Vec<&String> = have.iter().filter(|e| !now.contains(e)).collect();
        return changed(format!(
            "{}'s memberships differ from what accessdesk holds (in the system only: {added:?}; held only: {gone:?})",
            remote.login
        ));
    }
    Ok(Look::Unchanged)
}
