//! Workers: a scheduler on tokio that drives queued operations through the adapters.
//!
//! - Per-system concurrency (from systems.toml), and each adapter's own shared rate limiter.
//! - Order: an operation runs only when everything it depends on has succeeded (a person's
//!   account before its memberships; a system's dependencies' accounts before its own).
//!   Independent systems and people run in parallel. Leavers go first.
//! - Retries: RateLimited and Transient errors wait with exponential backoff (full jitter,
//!   at least the vendor's Retry-After) until the retry window closes. Permanent errors fail
//!   the operation and block what depends on it, with the reason; nothing else stops and
//!   nothing that succeeded is rolled back. Idempotency is the adapters': "already a
//!   member", "not a member" and "already gone" reach the engine as success
//!   (`adapters::error::already_done`); every error that reaches it is a failure.
//! - Eventual consistency: on systems configured with `verify = true`, a
//!   successful write goes to `verifying` and is polled until the effect is observed, or
//!   fails with "not observed after N s".
//! - Crash safety: every transition is committed with its audit event before and after
//!   the side effect. On start, operations left `running` are checked against the target:
//!   if the effect is there they succeed, otherwise they are retried. Creation looks the
//!   account up before creating, so a retry never duplicates an account.

use super::identity::LoginChange;
use crate::adapters::{
    AccountSpec, Adapter, AdapterError, EntitlementTarget, ErrorClass, RemoteAccount,
};
use crate::config::Catalog;
use crate::config::systems::OnLeave;
use crate::model::login::LoginTemplate;
use crate::model::{EntitlementRef, OperationKind, OperationStatus};
use crate::store::Store;
use crate::store::access::AccountRow;
use crate::store::queue::{Change, ErrorInfo, OpRow};
use crate::{Error, Result};
use chrono::{DateTime, Utc};
use serde::Serialize;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Tunables. Defaults suit production; tests shorten them.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// How long after the first attempt retryable errors keep being retried.
    pub retry_window: Duration,
    pub retry_base: Duration,
    pub retry_cap: Duration,
    /// How long `verifying` waits for an effect, and how often it looks.
    pub verify_deadline: Duration,
    pub verify_poll: Duration,
    /// How often an idle scheduler looks for new work.
    pub idle_poll: Duration,
    pub actor: String,
    /// Added to the wall clock wherever the engine decides what is due or who has left
    /// (tests use it to reach a scheduled time without waiting; zero otherwise).
    pub clock_offset: chrono::Duration,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            retry_window: Duration::from_secs(3600),
            retry_base: Duration::from_millis(500),
            retry_cap: Duration::from_secs(60),
            verify_deadline: Duration::from_secs(120),
            verify_poll: Duration::from_secs(2),
            idle_poll: Duration::from_millis(50),
            actor: "engine".into(),
            clock_offset: chrono::Duration::zero(),
        }
    }
}

/// One system as the engine drives it.
pub struct SystemRuntime {
    pub adapter: Arc<dyn Adapter>,
    pub kind: crate::model::SystemKind,
    pub concurrency: usize,
    pub verify: bool,
    permits: Arc<tokio::sync::Semaphore>,
}

impl SystemRuntime {
    pub fn new(
        adapter: Arc<dyn Adapter>,
        kind: crate::model::SystemKind,
        concurrency: usize,
        verify: bool,
    ) -> Self {
        SystemRuntime {
            adapter,
            kind,
            concurrency: concurrency.max(1),
            verify,
            permits: Arc::new(tokio::sync::Semaphore::new(concurrency.max(1))),
        }
    }
}

/// What the engine tells whoever watches it (the console, a progress line).
#[derive(Debug, Clone, Serialize)]
pub struct EngineEvent {
    pub op: i64,
    pub system: String,
    pub kind: OperationKind,
    pub person_id: String,
    pub status: OperationStatus,
    pub message: Option<String>,
}

/// A configured system the engine has no adapter for (its credential is missing, no
/// adapter exists for its kind, its settings are incomplete): its operations stay queued.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Unavailable {
    pub system: String,
    /// Why, as one sentence that names the system.
    pub reason: String,
}

impl Unavailable {
    pub fn new(system: &str, reason: impl Into<String>) -> Unavailable {
        let reason = reason.into();
        // Most errors already name the system ("system okta: ..."); say it once.
        let reason = if reason.contains(system) {
            reason
        } else {
            format!("{system}: {reason}")
        };
        Unavailable {
            system: system.to_string(),
            reason,
        }
    }
}

impl std::fmt::Display for Unavailable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.reason)
    }
}

/// A summary of one run.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct RunSummary {
    pub succeeded: usize,
    pub failed: usize,
    pub retried: usize,
    pub blocked: usize,
    pub recovered: usize,
}

pub struct Engine {
    store: Arc<Mutex<Store>>,
    pub(crate) catalog: Arc<Catalog>,
    systems: HashMap<String, SystemRuntime>,
    pub(crate) cfg: EngineConfig,
    events: Option<tokio::sync::mpsc::UnboundedSender<EngineEvent>>,
}

/// After the first of several running operations finishes, how long the scheduler waits
/// for more before settling them together (group commit), and the most it gathers.
const GATHER_WAIT: Duration = Duration::from_micros(500);
const GATHER_MAX: usize = 1024;

/// A system with fewer ready operations than this gets more rows from the backlog, in
/// batches of about `FEED_ROWS` (a few tens of milliseconds of writing each).
const FEED_LOW: usize = 1024;
const FEED_ROWS: usize = 4096;

type Attrs = std::collections::BTreeMap<String, String>;

/// What the claiming transaction read for an operation (its person, their account and
/// login in the op's system), so the task starts without going back to the store.
#[derive(Default)]
struct Known {
    person: Option<crate::model::Person>,
    account: Option<AccountRow>,
    login: Option<crate::store::identity::LoginRow>,
    /// The login was assigned by this claim (no create was ever sent under it).
    fresh_login: bool,
}

enum Outcome {
    /// The effect is in place. `write_through`: record it in the store as the operation
    /// is marked succeeded (one transaction).
    Done {
        write_through: bool,
        /// The account a create made or adopted, with the attributes it was written
        /// with (None when adopted: not known to be current), recorded in the same
        /// transaction as the success.
        account: Option<(RemoteAccount, Option<Attrs>)>,
        /// What an attribute update wrote (and the login it renamed), recorded in the
        /// same transaction as the success.
        moved: Option<Moved>,
    },
    /// Written; waiting to be observed.
    Verify,
    /// Verifying, not observed yet: look again after the poll interval.
    LookAgain,
    Retry(AdapterError),
    Fail(AdapterError),
    /// Not to be run after all (the person left, or is no longer leaving); nothing was sent.
    Cancel(String),
}

/// What a mover's update wrote on the account.
struct Moved {
    attrs: Attrs,
    /// (old, new) login, where the update renamed the account.
    renamed: Option<(String, String)>,
    /// Said with the success: why the login stays although the e-mail changed.
    note: Option<String>,
}

fn info(e: &AdapterError) -> ErrorInfo {
    ErrorInfo {
        class: e.class.name().into(),
        status: e.status,
        code: e.vendor_code.clone(),
        message: e.message.clone(),
        excerpt: e.excerpt.clone(),
        request: e.request.clone(),
    }
}

fn parse_ts(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

impl Engine {
    pub fn new(
        store: Arc<Mutex<Store>>,
        catalog: Arc<Catalog>,
        systems: HashMap<String, SystemRuntime>,
        cfg: EngineConfig,
    ) -> Self {
        Engine {
            store,
            catalog,
            systems,
            cfg,
            events: None,
        }
    }

    /// Build an engine for every system in systems.toml: one adapter each (its credential
    /// from `secrets`, its own rate limiter, HTTP `timeouts`), with the system's configured
    /// concurrency and verification. Systems whose adapter cannot be built are returned as
    /// [`Unavailable`]; their operations stay queued. The CLI passes the keychain
    /// and the default timeouts; the demo its own keychain and shorter timeouts.
    pub fn from_config(
        cfg: &crate::config::SystemsConfig,
        store: Arc<Mutex<Store>>,
        secrets: &dyn crate::adapters::registry::SecretSource,
        timeouts: crate::adapters::http::Timeouts,
        engine_config: EngineConfig,
    ) -> (Engine, Vec<Unavailable>) {
        use crate::adapters::registry::{AdapterContext, build_with, limiter_for};
        let mut systems = HashMap::new();
        let mut problems = Vec::new();
        for (name, entry) in &cfg.catalog.systems {
            let ctx = AdapterContext {
                entry,
                secrets,
                limiter: limiter_for(entry),
                timeouts,
            };
            match build_with(ctx) {
                Ok(adapter) => {
                    let concurrency = entry
                        .rate_limit
                        .map(|r| r.concurrency as usize)
                        .unwrap_or(4);
                    systems.insert(
                        name.clone(),
                        SystemRuntime::new(adapter, entry.system.kind, concurrency, entry.verify),
                    );
                }
                Err(e) => problems.push(Unavailable::new(name, e.to_string())),
            }
        }
        let engine = Engine::new(store, Arc::new(cfg.catalog.clone()), systems, engine_config);
        (engine, problems)
    }

    /// Send progress events to this channel.
    pub fn with_events(mut self, tx: tokio::sync::mpsc::UnboundedSender<EngineEvent>) -> Self {
        self.events = Some(tx);
        self
    }

    /// The engine's clock: the wall clock plus the configured offset.
    pub fn now(&self) -> DateTime<Utc> {
        Utc::now() + self.cfg.clock_offset
    }

    pub(crate) fn db<T>(&self, f: impl FnOnce(&mut Store) -> Result<T>) -> Result<T> {
        let mut guard = self.store.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut guard)
    }

    fn emit(&self, op: &OpRow, status: OperationStatus, message: Option<String>) {
        if let Some(tx) = &self.events {
            let _ = tx.send(EngineEvent {
                op: op.id,
                system: op.system.clone(),
                kind: op.kind,
                person_id: op.person_id.clone(),
                status,
                message,
            });
        }
    }

    pub(crate) fn runtime_of(&self, system: &str) -> Option<&SystemRuntime> {
        self.systems.get(system)
    }

    fn runtime(&self, system: &str) -> Result<&SystemRuntime> {
        self.systems
            .get(system)
            .ok_or_else(|| Error::Failed(format!("no adapter is configured for system {system:?}")))
    }

    /// The adapter driving a system (for status and connection tests; see engine/status.rs).
    pub fn adapter(&self, system: &str) -> Option<&Arc<dyn Adapter>> {
        self.systems.get(system).map(|r| &r.adapter)
    }

    /// Every system this engine drives, with its runtime.
    pub fn runtimes(&self) -> impl Iterator<Item = (&String, &SystemRuntime)> {
        self.systems.iter()
    }

    /// After a crash: settle operations left `running` by checking the target.
    pub async fn recover(&self) -> Result<usize> {
        let running = self.db(|s| s.ops_with_status(&[OperationStatus::Running], 100_000))?;
        let mut n = 0;
        for op in running {
            let present = self.effect_present(&op).await.unwrap_or_default();
            let actor = self.cfg.actor.clone();
            if present {
                self.record_effect(&op, None).await?;
                self.db(|s| {
                    s.write(|tx| {
                        tx.transition(
                            op.id,
                            &[OperationStatus::Running],
                            OperationStatus::Succeeded,
                            Change {
                                why: Some(
                                    "recovered after a restart: the effect was already in place",
                                ),
                                ..Default::default()
                            },
                            &actor,
                        )
                    })
                })?;
            } else {
                self.db(|s| {
                    s.write(|tx| {
                        tx.transition(
                            op.id,
                            &[OperationStatus::Running],
                            OperationStatus::Queued,
                            Change {
                                why: Some("recovered after a restart: not done yet, retrying"),
                                ..Default::default()
                            },
                            &actor,
                        )
                    })
                })?;
            }
            n += 1;
        }
        Ok(n)
    }

    /// Process the queue until nothing is runnable or waiting (only terminal, blocked and
    /// pending-approval operations remain), or until `stop` turns true.
    pub async fn run_until_idle(
        self: &Arc<Self>,
        stop: Option<tokio::sync::watch::Receiver<bool>>,
    ) -> Result<RunSummary> {
        self.run(stop, false).await
    }

    /// Process the queue until `stop` turns true. When idle, keep looking for new work
    /// (operations enqueued by an import, a plan applied, an approval or a retry) every
    /// few `idle_poll`s instead of returning: the console and the demo run it this way.
    pub async fn run_until_stopped(
        self: &Arc<Self>,
        stop: tokio::sync::watch::Receiver<bool>,
    ) -> Result<RunSummary> {
        self.run(Some(stop), true).await
    }

    /// The scheduler loop behind [`Engine::run_until_idle`] and
    /// [`Engine::run_until_stopped`]; `keep_polling` decides what happens when it is idle.
    ///
    /// Group commit: the loop is the one writer of operation transitions. Each turn it
    /// settles every finished operation in one transaction, then claims every runnable
    /// one (over all systems) in another, so a busy queue costs two commits per turn
    /// rather than two per operation. A claim is still committed before its request is
    /// sent, and an outcome after it, so crash recovery is unchanged.
    async fn run(
        self: &Arc<Self>,
        stop: Option<tokio::sync::watch::Receiver<bool>>,
        keep_polling: bool,
    ) -> Result<RunSummary> {
        let mut summary = RunSummary {
            recovered: self.recover().await?,
            ..Default::default()
        };
        let mut tasks: tokio::task::JoinSet<(Arc<OpRow>, Result<Outcome>)> =
            tokio::task::JoinSet::new();
        // Verifying operations being looked at right now (they stay `verifying` meanwhile).
        let mut looking: std::collections::HashSet<i64> = std::collections::HashSet::new();
        let mut finished: Vec<(Arc<OpRow>, Result<Outcome>)> = Vec::new();
        loop {
            if stop.as_ref().is_some_and(|s| *s.borrow()) {
                break;
            }
            // Reap finished work, and settle it all in one transaction.
            while let Some(done) = tasks.try_join_next() {
                match done {
                    Ok(d) => finished.push(d),
                    Err(e) => return Err(Error::Failed(format!("a worker task failed: {e}"))),
                }
            }
            for (op, _) in &finished {
                looking.remove(&op.id);
            }
            self.settle_all(std::mem::take(&mut finished), &mut summary)?;
            self.flush_signals()?;
            let fed = self.feed()?;
            let dispatched = self.dispatch(&mut tasks, &mut looking)?;
            if tasks.is_empty() && dispatched == 0 {
                if fed {
                    // New rows, none runnable yet (they wait on something): look again.
                    continue;
                }
                // Nothing running. Is anything waiting for its time?
                let next = self.db(|s| s.next_wakeup())?;
                let longest = self.cfg.idle_poll.max(Duration::from_millis(10)) * 20;
                let wait = match next.and_then(|t| parse_ts(&t)) {
                    None if keep_polling => longest / 4,
                    None => break,
                    Some(t) => (t - self.now())
                        .to_std()
                        .unwrap_or(Duration::ZERO)
                        .min(longest),
                };
                tokio::time::sleep(wait.max(Duration::from_millis(5))).await;
                continue;
            }
            // Wait for a task to finish or a short poll, whichever is first; then gather
            // what else finishes within a moment, so one commit settles many.
            tokio::select! {
                Some(done) = tasks.join_next() => {
                    match done {
                        Ok(d) => finished.push(d),
                        Err(e) => return Err(Error::Failed(format!("a worker task failed: {e}"))),
                    }
                    while finished.len() < GATHER_MAX {
                        match tokio::time::timeout(GATHER_WAIT, tasks.join_next()).await {
                            Ok(Some(Ok(d))) => finished.push(d),
                            Ok(Some(Err(e))) => {
                                return Err(Error::Failed(format!("a worker task failed: {e}")))
                            }
                            Ok(None) | Err(_) => break,
                        }
                    }
                }
                _ = tokio::time::sleep(self.cfg.idle_poll) => {}
            }
        }
        // Let in-flight work finish and be recorded.
        while let Some(done) = tasks.join_next().await {
            if let Ok(d) = done {
                finished.push(d);
            }
        }
        self.settle_all(finished, &mut summary)?;
        self.flush_signals()?;
        Ok(summary)
    }

    /// Make queue rows from applied plans' backlogs (store/backlog.rs) when a system this
    /// engine drives has operations there and fewer than [`FEED_LOW`] ready to run: one
    /// batch of whole people, [`FEED_ROWS`] operations or so. Returns whether it made any.
    fn feed(&self) -> Result<bool> {
        let actor = self.cfg.actor.clone();
        self.db(|s| {
            for (system, _) in s.backlog_counts()? {
                if self.systems.contains_key(&system)
                    && s.ready_count(&system, FEED_LOW)? < FEED_LOW
                {
                    let n = s.write(|tx| {
                        crate::engine::apply::materialise(tx, &self.catalog, FEED_ROWS, &actor)
                    })?;
                    return Ok(n > 0);
                }
            }
            Ok(false)
        })
    }

    /// Claim what may run now, on every system with free capacity, in one transaction,
    /// and start it; start looks at verifying operations that are due. Returns how many
    /// tasks were started.
    fn dispatch(
        self: &Arc<Self>,
        tasks: &mut tokio::task::JoinSet<(Arc<OpRow>, Result<Outcome>)>,
        looking: &mut std::collections::HashSet<i64>,
    ) -> Result<usize> {
        let now = self.now();
        let actor = self.cfg.actor.clone();
        let (claimed, due) = self.db(|s| {
            let mut wanted = Vec::new();
            let mut due = Vec::new();
            for (name, rt) in &self.systems {
                let free = rt.permits.available_permits();
                if free > 0 {
                    for op in s.ready_ops_for(name, now, free)? {
                        let Ok(permit) = rt.permits.clone().try_acquire_owned() else {
                            break;
                        };
                        wanted.push((op, permit));
                    }
                }
                due.extend(s.verifying_due(name, now, 64)?);
            }
            if wanted.is_empty() {
                return Ok((Vec::new(), due));
            }
            let claimed = s.write(|tx| {
                let mut claimed = Vec::with_capacity(wanted.len());
                for (op, permit) in wanted {
                    if tx.transition(
                        op.id,
                        &[
                            OperationStatus::Queued,
                            OperationStatus::RetryWait,
                            OperationStatus::Scheduled,
                        ],
                        OperationStatus::Running,
                        Change {
                            count_attempt: true,
                            audited_by_caller: true,
                            ..Default::default()
                        },
                        &actor,
                    )? {
                        let person = tx.person_by_id(&op.person_id)?;
                        let mut login = tx.login_of(&op.system, &op.person_id)?;
                        let mut fresh_login = false;
                        // A create's login is assigned as it is claimed (engine/identity.rs);
                        // not for a leaver, whose create is about to be cancelled.
                        if let Some(p) = &person
                            && login.is_none()
                            && op.kind == OperationKind::CreateAccount
                            && !p.is_leaver(now)
                        {
                            login = self.assign_login_in(tx, &op.system, p)?;
                            fresh_login = login.is_some();
                        }
                        let known = Known {
                            account: tx.account_for(&op.system, &op.person_id)?,
                            person,
                            login,
                            fresh_login,
                        };
                        claimed.push((op, permit, known));
                    }
                }
                // One audit event for the batch: which operations started, and how.
                if !claimed.is_empty() {
                    let ops: Vec<serde_json::Value> = claimed
                        .iter()
                        .map(|(o, _, _)| {
                            serde_json::json!({"op": o.id, "system": o.system, "person": o.person_id,
                                               "from": o.status.as_str(), "attempt": o.attempts + 1})
                        })
                        .collect();
                    tx.audit(crate::store::NewAuditEvent {
                        actor: &actor,
                        action: "op.claimed",
                        subject: "queue",
                        details: serde_json::json!({"to": "running", "ops": ops}),
                    })?;
                }
                Ok(claimed)
            })?;
            Ok((claimed, due))
        })?;
        let mut started = 0;
        for (op, permit, known) in claimed {
            self.emit(&op, OperationStatus::Running, None);
            let me = self.clone();
            let op = Arc::new(op);
            tasks.spawn(async move {
                let out = me.execute(&op, known).await;
                drop(permit);
                (op, out)
            });
            started += 1;
        }
        for op in due {
            if !looking.insert(op.id) {
                continue;
            }
            let me = self.clone();
            let op = Arc::new(op);
            tasks.spawn(async move {
                let out = me.verify(&op).await;
                (op, out)
            });
            started += 1;
        }
        Ok(started)
    }

    /// Write the outcomes of finished operations, all in one transaction, then tell the
    /// watchers.
    fn settle_all(
        &self,
        done: Vec<(Arc<OpRow>, Result<Outcome>)>,
        summary: &mut RunSummary,
    ) -> Result<()> {
        if done.is_empty() {
            return Ok(());
        }
        let mut counts = RunSummary::default();
        let told = self.db(|s| {
            s.write(|tx| {
                let mut told = Vec::with_capacity(done.len());
                for (op, outcome) in done {
                    let (status, message) = self.settle_in(tx, &op, outcome, &mut counts)?;
                    told.push((op, status, message));
                }
                // The batch's successes in one audit event, as their claims were: which
                // operation, of whom, in which system, from which status (running or
                // verifying), and any note.
                let ops: Vec<serde_json::Value> = told
                    .iter()
                    .filter(|(_, st, _)| *st == Some(OperationStatus::Succeeded))
                    .map(|(o, _, note)| {
                        let mut v = serde_json::json!({"op": o.id, "system": o.system,
                                                       "person": o.person_id,
                                                       "from": o.status.as_str()});
                        if let Some(n) = note {
                            v["note"] = serde_json::json!(n);
                        }
                        v
                    })
                    .collect();
                if !ops.is_empty() {
                    tx.audit(crate::store::NewAuditEvent {
                        actor: &self.cfg.actor,
                        action: "op.succeeded",
                        subject: "queue",
                        details: serde_json::json!({"to": "succeeded", "ops": ops}),
                    })?;
                }
                Ok(told)
            })
        })?;
        summary.succeeded += counts.succeeded;
        summary.failed += counts.failed;
        summary.retried += counts.retried;
        summary.blocked += counts.blocked;
        for (op, status, message) in told {
            if let Some(status) = status {
                self.emit(&op, status, message);
            }
        }
        Ok(())
    }

    /// Write one operation's outcome in `tx`. Returns the status to announce, if any.
    fn settle_in(
        &self,
        tx: &mut crate::store::Tx<'_>,
        op: &OpRow,
        outcome: Result<Outcome>,
        summary: &mut RunSummary,
    ) -> Result<(Option<OperationStatus>, Option<String>)> {
        let actor = self.cfg.actor.as_str();
        let from = [OperationStatus::Running, OperationStatus::Verifying];
        let outcome = match outcome {
            Ok(o) => o,
            Err(e) => Outcome::Fail(AdapterError::new(
                ErrorClass::Permanent,
                &op.system,
                e.to_string(),
            )),
        };
        let now = Utc::now();
        Ok(match outcome {
            Outcome::Done {
                write_through,
                account,
                moved,
            } => {
                if op.status != OperationStatus::Verifying {
                    tx.record_attempt(op.id, op.attempts + 1, now, "ok", None)?;
                }
                if let Some((acc, attrs)) = account {
                    remember_in_tx(tx, op, &acc, attrs.as_ref(), actor)?;
                }
                let note = match moved {
                    Some(m) => moved_in_tx(tx, op, m, actor)?,
                    None => None,
                };
                if write_through {
                    effect_in_tx(tx, op, actor)?;
                }
                tx.transition(
                    op.id,
                    &from,
                    OperationStatus::Succeeded,
                    Change {
                        clear_error: true,
                        // One `op.succeeded` event for the batch (settle_all).
                        audited_by_caller: true,
                        ..Default::default()
                    },
                    actor,
                )?;
                summary.succeeded += 1;
                (Some(OperationStatus::Succeeded), note)
            }
            Outcome::Verify => {
                tx.record_attempt(op.id, op.attempts + 1, now, "ok", None)?;
                let until =
                    now + chrono::Duration::from_std(self.cfg.verify_deadline).unwrap_or_default();
                let next =
                    now + chrono::Duration::from_std(self.cfg.verify_poll).unwrap_or_default();
                tx.transition(
                    op.id,
                    &[OperationStatus::Running],
                    OperationStatus::Verifying,
                    Change {
                        verify_until: Some(until),
                        next_attempt_at: Some(next),
                        ..Default::default()
                    },
                    actor,
                )?;
                (Some(OperationStatus::Verifying), None)
            }
            Outcome::LookAgain => {
                let next =
                    now + chrono::Duration::from_std(self.cfg.verify_poll).unwrap_or_default();
                tx.set_next_attempt(op.id, next, actor)?;
                (None, None)
            }
            Outcome::Retry(e) => {
                let first = tx
                    .first_attempt_at(op.id)?
                    .and_then(|t| parse_ts(&t))
                    .unwrap_or(now);
                let elapsed = (now - first).to_std().unwrap_or_default();
                if elapsed >= self.cfg.retry_window {
                    let extra = format!("still failing after {} s of retries", elapsed.as_secs());
                    return self.fail_in(tx, op, e, summary, &extra);
                }
                let exp = self
                    .cfg
                    .retry_base
                    .saturating_mul(1u32 << op.attempts.min(16))
                    .min(self.cfg.retry_cap);
                let jitter = Duration::from_secs_f64(rand::random::<f64>() * exp.as_secs_f64());
                let delay = e.class.retry_after().map_or(jitter, |ra| ra.max(jitter));
                let next = now + chrono::Duration::from_std(delay).unwrap_or_default();
                let err = info(&e);
                tx.record_attempt(op.id, op.attempts + 1, now, "retry", Some(&err))?;
                tx.transition(
                    op.id,
                    &[OperationStatus::Running],
                    OperationStatus::RetryWait,
                    Change {
                        next_attempt_at: Some(next),
                        error: Some(&err),
                        ..Default::default()
                    },
                    actor,
                )?;
                summary.retried += 1;
                (Some(OperationStatus::RetryWait), Some(e.to_string()))
            }
            Outcome::Fail(e) => return self.fail_in(tx, op, e, summary, ""),
            Outcome::Cancel(why) => {
                tx.cancel_with_dependents(
                    op.id,
                    &[OperationStatus::Running],
                    &why,
                    &format!("cancelled with #{}: {why}", op.id),
                    actor,
                )?;
                (Some(OperationStatus::Cancelled), Some(why))
            }
        })
    }

    /// Fail an operation in `tx` and block everything waiting on it, with the reason.
    fn fail_in(
        &self,
        tx: &mut crate::store::Tx<'_>,
        op: &OpRow,
        e: AdapterError,
        summary: &mut RunSummary,
        extra: &str,
    ) -> Result<(Option<OperationStatus>, Option<String>)> {
        let actor = self.cfg.actor.as_str();
        let mut err = info(&e);
        if !extra.is_empty() {
            err.message = format!("{} ({extra})", err.message);
        }
        let reason = format!(
            "waiting on #{} ({} {} for {}), which failed: {}",
            op.id,
            op.kind.as_str(),
            op.system,
            op.person_id,
            err.message
        );
        tx.record_attempt(op.id, op.attempts + 1, Utc::now(), "failed", Some(&err))?;
        tx.transition(
            op.id,
            &[OperationStatus::Running, OperationStatus::Verifying],
            OperationStatus::Failed,
            Change {
                error: Some(&err),
                ..Default::default()
            },
            actor,
        )?;
        for d in tx.dependents(op.id)? {
            if tx.transition(
                d,
                &[
                    OperationStatus::Queued,
                    OperationStatus::RetryWait,
                    OperationStatus::PendingApproval,
                ],
                OperationStatus::Blocked,
                Change {
                    blocked_reason: Some(&reason),
                    ..Default::default()
                },
                actor,
            )? {
                summary.blocked += 1;
            }
        }
        summary.failed += 1;
        Ok((Some(OperationStatus::Failed), Some(err.message)))
    }

    fn classify(
        &self,
        r: std::result::Result<Option<(RemoteAccount, Option<Attrs>)>, AdapterError>,
    ) -> Outcome {
        match r {
            Ok(account) => Outcome::Done {
                write_through: true,
                account,
                moved: None,
            },
            // "Already so" answers are the adapters' to settle (adapters::error::
            // already_done): every error that reaches here is one.
            Err(e) if e.class.is_retryable() => Outcome::Retry(e),
            Err(e) => Outcome::Fail(e),
        }
    }

    fn person(&self, op: &OpRow, known: &Known) -> Result<crate::model::Person> {
        known
            .person
            .clone()
            .ok_or_else(|| Error::Failed(format!("person {} is no longer known", op.person_id)))
    }

    fn target(&self, op: &OpRow) -> std::result::Result<EntitlementTarget, AdapterError> {
        let perm = |m: String| AdapterError::new(ErrorClass::Permanent, &op.system, m);
        let raw = op
            .entitlement
            .as_deref()
            .ok_or_else(|| perm("membership operation without an entitlement".into()))?;
        let r: EntitlementRef = raw.parse().map_err(perm)?;
        Ok(match self.catalog.entitlement(&r.system, r.kind, &r.name) {
            Some(e) => EntitlementTarget::from_entitlement(e, &r.name),
            None => EntitlementTarget {
                kind: r.kind,
                name: r.name.clone(),
                external_id: r.name.clone(),
            },
        })
    }

    /// The person's account in the op's system: from the store, else looked up by their
    /// assigned login and accepted only with proof that it is theirs (engine/identity.rs).
    async fn account(
        &self,
        op: &OpRow,
        rt: &SystemRuntime,
        known: &Known,
    ) -> std::result::Result<Option<String>, AdapterError> {
        if let Some(a) = known.account.as_ref().and_then(|a| a.external_id.clone()) {
            return Ok(Some(a));
        }
        // No login assigned: accessdesk never created an account for them here.
        let Some(login) = &known.login else {
            return Ok(None);
        };
        let Some(found) = rt.adapter.get_account_by_login(&login.login).await? else {
            return Ok(None);
        };
        let acc = self.require_proof(op, rt, found)?;
        self.remember_account(op, &acc)
            .map_err(|e| AdapterError::new(ErrorClass::Transient, &op.system, e.to_string()))?;
        Ok(Some(acc.external_id))
    }

    fn remember_account(&self, op: &OpRow, acc: &RemoteAccount) -> Result<()> {
        let row = account_row(op, acc);
        let actor = self.cfg.actor.clone();
        self.db(|s| s.write(|tx| tx.upsert_account(&row, &actor)))?;
        Ok(())
    }

    /// The person shaped for the op's system under `login`, with their manager's account
    /// there where the store knows it.
    fn spec_for(
        &self,
        op: &OpRow,
        rt: &SystemRuntime,
        person: &crate::model::Person,
        login: &str,
    ) -> AccountSpec {
        let mut spec = AccountSpec::for_person(person, rt.kind, login);
        if let Some(m) = person.manager_id.as_deref().filter(|m| !m.is_empty()) {
            // Unknown (or unreadable) leaves the manager out; it never fails the write.
            spec.manager_account = self
                .db(|s| s.account_for(&op.system, m))
                .ok()
                .flatten()
                .and_then(|a| a.external_id);
        }
        spec
    }

    /// The person's assigned login here, and what their e-mail change (since accessdesk
    /// last wrote the account) means for it (engine/identity.rs `login_change`).
    fn login_change(
        &self,
        op: &OpRow,
        rt: &SystemRuntime,
        person: &crate::model::Person,
    ) -> Result<(String, Option<LoginChange>)> {
        let template = self
            .catalog
            .systems
            .get(&op.system)
            .map(|e| e.login.clone())
            .unwrap_or_else(|| LoginTemplate::default_for(rt.kind));
        self.db(|s| {
            let Some(assigned) = s.login_of(&op.system, &op.person_id)? else {
                return Ok((String::new(), None));
            };
            let old_email = s
                .account_attrs(&op.system, &op.person_id)?
                .and_then(|mut a| a.remove("email"));
            let change = match old_email {
                Some(old) => super::identity::login_change(
                    &op.system,
                    rt.kind,
                    &template,
                    person,
                    &old,
                    &assigned.login,
                    |l| s.login_holder(&op.system, l, &op.person_id),
                )?,
                None => None,
            };
            Ok((assigned.login, change))
        })
    }

    /// Whether the op still makes sense for its person right now: nothing is granted to a
    /// leaver, and nobody who is no longer leaving is deactivated.
    fn still_wanted(&self, op: &OpRow, known: &Known) -> Result<Option<String>> {
        let person = self.person(op, known)?;
        let leaver = person.is_leaver(self.now());
        Ok(if op.kind.grants() && leaver {
            Some(format!(
                "cancelled before it ran: {} is a leaver (status {}{})",
                op.person_id,
                person.status,
                person
                    .end_date
                    .map(|d| format!(", end date {d}"))
                    .unwrap_or_default()
            ))
        } else if op.kind == OperationKind::Deactivate && !leaver {
            Some(format!(
                "cancelled before it ran: {} is no longer leaving (status {}{})",
                op.person_id,
                person.status,
                person
                    .end_date
                    .map(|d| format!(", end date {d}"))
                    .unwrap_or_default()
            ))
        } else {
            None
        })
    }

    async fn execute(&self, op: &OpRow, known: Known) -> Result<Outcome> {
        let rt = self.runtime(&op.system)?;
        if op.kind.on_account() {
            return self.deactivate_orphan(op, rt).await;
        }
        if let Some(why) = self.still_wanted(op, &known)? {
            return Ok(Outcome::Cancel(why));
        }
        let mut moved: Option<Moved> = None;
        let r: std::result::Result<Option<(RemoteAccount, Option<Attrs>)>, AdapterError> = async {
            match op.kind {
                // Acts on an account, not a person's: run by `deactivate_orphan`.
                OperationKind::DeactivateOrphan => Err(AdapterError::new(
                    ErrorClass::Permanent,
                    &op.system,
                    "an orphan's deactivation is not a person's operation",
                )),
                OperationKind::CreateAccount => {
                    let person = self.person(op, &known).map_err(|e| {
                        AdapterError::new(ErrorClass::Permanent, &op.system, e.to_string())
                    })?;
                    let (acc, attrs) = self
                        .create(op, rt, &person, known.login.clone(), known.fresh_login)
                        .await?;
                    Ok(Some((acc, attrs)))
                }
                OperationKind::AddMembership | OperationKind::RemoveMembership => {
                    let target = self.target(op)?;
                    let acc = self.account(op, rt, &known).await?.ok_or_else(|| {
                        AdapterError::new(
                            ErrorClass::Permanent,
                            &op.system,
                            format!("{} has no account in {}", op.person_id, op.system),
                        )
                    })?;
                    let res = if op.kind == OperationKind::AddMembership {
                        rt.adapter.add_membership(&acc, &target).await
                    } else {
                        rt.adapter.remove_membership(&acc, &target).await
                    };
                    res.map(|()| None)
                }
                OperationKind::Deactivate | OperationKind::Reactivate => {
                    let Some(acc) = self.account(op, rt, &known).await? else {
                        return if op.kind == OperationKind::Deactivate {
                            Ok(None)
                        } else {
                            Err(AdapterError::new(
                                ErrorClass::NotFound,
                                &op.system,
                                "no account to reactivate",
                            ))
                        };
                    };
                    if op.kind == OperationKind::Deactivate {
                        rt.adapter.deactivate_account(&acc).await?;
                        if self.catalog.on_leave(&op.system) == OnLeave::Delete {
                            if !rt.adapter.capabilities().delete {
                                return Err(AdapterError::unsupported(
                                    &op.system,
                                    "deleting accounts (on_leave = \"delete\"; the account is deactivated)",
                                ));
                            }
                            rt.adapter.delete_account(&acc).await?;
                        }
                        Ok(None)
                    } else {
                        rt.adapter.reactivate_account(&acc).await.map(|()| None)
                    }
                }
                OperationKind::UpdateAttributes => {
                    let person = self.person(op, &known).map_err(|e| {
                        AdapterError::new(ErrorClass::Permanent, &op.system, e.to_string())
                    })?;
                    let acc = self.account(op, rt, &known).await?.ok_or_else(|| {
                        AdapterError::new(ErrorClass::NotFound, &op.system, "no account to update")
                    })?;
                    let change = self.login_change(op, rt, &person).map_err(|e| {
                        AdapterError::new(ErrorClass::Transient, &op.system, e.to_string())
                    })?;
                    let (login, rename, note) = match change {
                        (_, Some(LoginChange::Rename { from, to })) => {
                            (to.clone(), Some((from, to)), None)
                        }
                        (login, Some(keep)) => (login, None, Some(keep.describe())),
                        (login, None) => (login, None, None),
                    };
                    let spec = self.spec_for(op, rt, &person, &login);
                    rt.adapter
                        .update_account(&acc, &spec)
                        .await
                        .map_err(|e| match &rename {
                            // Renaming onto a login the target already has: nothing was
                            // renamed, and it is not "already done".
                            Some((from, to)) if e.class == ErrorClass::Conflict => e.reclassified(
                                ErrorClass::Permanent,
                                format!(
                                    "cannot rename {}'s login in {} from {from:?} to {to:?}: another account there has it ({}); nothing was renamed",
                                    op.person_id, op.system, e.message
                                ),
                            ),
                            _ => e,
                        })?;
                    moved = Some(Moved {
                        attrs: spec.synced_attributes(),
                        renamed: rename,
                        note,
                    });
                    Ok(None)
                }
            }
        }
        .await;
        let mut outcome = self.classify(r);
        if let Outcome::Done { moved: m, .. } = &mut outcome {
            *m = moved;
        }
        // On verified systems the effect is written through now and the operation waits
        // in `verifying`; elsewhere it is written with the success, in one transaction.
        // A create and an update are read back by the call itself (the account the
        // vendor answers with).
        if matches!(outcome, Outcome::Done { .. })
            && rt.verify
            && !matches!(
                op.kind,
                OperationKind::CreateAccount | OperationKind::UpdateAttributes
            )
        {
            self.record_effect(op, None).await?;
            return Ok(Outcome::Verify);
        }
        Ok(outcome)
    }

    /// Deactivate an account no person owns (`op.person_id` is its external id), after
    /// reading it again: one that now proves to be somebody's (it carries the HR id of a
    /// person in HR, or accessdesk links it to one) is left alone, and one already
    /// inactive or gone needs nothing. Never deleted, whatever the leaver policy.
    async fn deactivate_orphan(&self, op: &OpRow, rt: &SystemRuntime) -> Result<Outcome> {
        let id = op.person_id.as_str();
        let found = match rt.adapter.get_account(id).await {
            Ok(f) => f,
            Err(e) => return Ok(self.classify(Err(e))),
        };
        let Some(acc) = found else {
            return Ok(self.classify(Ok(None)));
        };
        let owner = self.db(|s| {
            let by_hris = match acc.hris_id.as_deref().filter(|h| !h.is_empty()) {
                Some(h) => s.has_person(h)?.then(|| h.to_string()),
                None => None,
            };
            Ok(match by_hris {
                Some(p) => Some(p),
                None => s.account_owner_by_external_id(&op.system, id)?,
            })
        })?;
        if let Some(person) = owner {
            return Ok(Outcome::Cancel(format!(
                "cancelled before it ran: account {} ({id}) in {} is no longer an orphan: it belongs to {person}",
                acc.login, op.system
            )));
        }
        if !acc.active {
            return Ok(self.classify(Ok(None)));
        }
        // Never the account accessdesk's own credentials act as (an Okta API token's
        // admin, say): deactivating it would cut every integration off.
        let me = match rt.adapter.authenticate().await {
            Ok(me) => me,
            Err(e) => return Ok(self.classify(Err(e))),
        };
        if is_own_account(&me, &acc) {
            return Ok(Outcome::Cancel(format!(
                "cancelled before it ran: account {} ({id}) in {} is the one accessdesk's own credentials act as; it is never deactivated (accept the finding instead)",
                acc.login, op.system
            )));
        }
        let r = rt.adapter.deactivate_account(id).await.map(|()| None);
        Ok(self.classify(r))
    }

    /// Write through what a successful operation changed, so the next plan sees it.
    async fn record_effect(&self, op: &OpRow, _unused: Option<()>) -> Result<()> {
        let actor = self.cfg.actor.clone();
        self.db(|s| s.write(|tx| effect_in_tx(tx, op, &actor)))
    }

    /// Is the operation's effect visible in the target system?
    async fn effect_present(&self, op: &OpRow) -> std::result::Result<bool, AdapterError> {
        let rt = self
            .runtime(&op.system)
            .map_err(|e| AdapterError::new(ErrorClass::Permanent, &op.system, e.to_string()))?;
        if op.kind.on_account() {
            let acc = rt.adapter.get_account(&op.person_id).await?;
            return Ok(acc.is_none_or(|a| !a.active));
        }
        let login = self
            .db(|s| s.login_of(&op.system, &op.person_id))
            .map_err(|e| AdapterError::new(ErrorClass::Transient, &op.system, e.to_string()))?;
        // No login was ever assigned: no create was ever sent, so no account of theirs.
        let acc = match &login {
            Some(l) => match rt.adapter.get_account_by_login(&l.login).await? {
                // Someone else's account under that login is not their effect.
                Some(a) => match self.require_proof(op, rt, a) {
                    Ok(a) => Some(a),
                    Err(e) if e.class == ErrorClass::IdentityConflict => None,
                    Err(e) => return Err(e),
                },
                None => None,
            },
            None => None,
        };
        match op.kind {
            OperationKind::CreateAccount => {
                if let Some(a) = &acc {
                    let _ = self.remember_account(op, a);
                }
                Ok(acc.is_some())
            }
            OperationKind::Deactivate | OperationKind::DeactivateOrphan => {
                Ok(acc.is_none_or(|a| !a.active))
            }
            OperationKind::Reactivate => Ok(acc.is_some_and(|a| a.active)),
            OperationKind::UpdateAttributes => Ok(false),
            OperationKind::AddMembership | OperationKind::RemoveMembership => {
                let Some(a) = acc else {
                    return Ok(op.kind == OperationKind::RemoveMembership);
                };
                let target = self.target(op)?;
                let members = rt.adapter.list_memberships(&a.external_id).await?;
                let has = members.iter().any(|m| {
                    m.kind == target.kind
                        && (m.name == target.name || m.external_id == target.external_id)
                });
                Ok(has == (op.kind == OperationKind::AddMembership))
            }
        }
    }

    /// Create the person's account under their assigned login (assigned as the operation
    /// was claimed). On a retry the first attempt may have created it before its answer
    /// was lost, so look first. "Already exists" is read back and adopted only with proof
    /// that it is theirs. Otherwise the conflict is stored and nothing is attached to that
    /// account; under a login assigned by this claim (`fresh`: nothing was ever created
    /// under it for them) the person moves to the next free login, as if the account had
    /// been found before the login was given; under one assigned earlier the operation
    /// fails `identity_conflict` for an admin to settle. Returns the account, with the
    /// attributes it was written with (None when adopted).
    async fn create(
        &self,
        op: &OpRow,
        rt: &SystemRuntime,
        person: &crate::model::Person,
        login: Option<crate::store::identity::LoginRow>,
        fresh: bool,
    ) -> std::result::Result<(RemoteAccount, Option<Attrs>), AdapterError> {
        let mut login = login.ok_or_else(|| super::identity::no_free_login(op))?;
        // A first attempt was never sent before (attempts are counted when an operation
        // is claimed, before the call; one left running by a crash is settled by
        // `recover`), so it creates straight away.
        let mut look_first = op.attempts > 0;
        for _ in 0..=super::identity::MAX_SUFFIX {
            let existing = if look_first {
                rt.adapter.get_account_by_login(&login.login).await?
            } else {
                None
            };
            look_first = false;
            let found = match existing {
                Some(a) => a,
                None => {
                    // Our record of creating it goes in before the request where it is the
                    // proof (targets that cannot hold the HR id).
                    if login.create_sent_at.is_none() && !rt.adapter.stores_hris_id() {
                        self.db(|s| s.write(|tx| tx.mark_create_sent(&op.system, &op.person_id)))
                            .map_err(|e| {
                                AdapterError::new(ErrorClass::Transient, &op.system, e.to_string())
                            })?;
                    }
                    let spec = self.spec_for(op, rt, person, &login.login);
                    match rt.adapter.create_account(&spec).await {
                        Ok(a) => return Ok((a, Some(spec.synced_attributes()))),
                        Err(e) if e.class == ErrorClass::Conflict => {
                            match rt.adapter.get_account_by_login(&login.login).await? {
                                Some(a) => a,
                                // "Already exists" but not readable yet (the vendor is
                                // eventually consistent): look again later rather than
                                // count the create as done without knowing the account.
                                None => {
                                    return Err(e.reclassified(
                                        ErrorClass::Transient,
                                        format!(
                                            "{} already exists in {} but cannot be read yet ({}); looking again",
                                            login.login, op.system, e.message
                                        ),
                                    ));
                                }
                            }
                        }
                        Err(e) => return Err(e),
                    }
                }
            };
            match self.require_proof(op, rt, found) {
                Ok(a) => return Ok((a, None)),
                Err(e) if fresh && e.class == ErrorClass::IdentityConflict => {
                    login = self.reassign_login(op, person, &login.login)?;
                }
                Err(e) => return Err(e),
            }
        }
        Err(super::identity::no_free_login(op))
    }

    async fn verify(&self, op: &OpRow) -> Result<Outcome> {
        let until = op
            .verify_until
            .as_deref()
            .and_then(parse_ts)
            .unwrap_or_else(Utc::now);
        match self.effect_present(op).await {
            Ok(true) => Ok(Outcome::Done {
                write_through: false,
                account: None,
                moved: None,
            }),
            Ok(false) | Err(_) if Utc::now() >= until => Ok(Outcome::Fail(AdapterError::new(
                ErrorClass::Permanent,
                &op.system,
                format!(
                    "not observed after {} s",
                    self.cfg.verify_deadline.as_secs()
                ),
            ))),
            _ => Ok(Outcome::LookAgain),
        }
    }
}

/// Record the account an operation made or adopted for its person (and the attributes
/// it was written with).
fn remember_in_tx(
    tx: &mut crate::store::Tx<'_>,
    op: &OpRow,
    acc: &RemoteAccount,
    attrs: Option<&Attrs>,
    actor: &str,
) -> Result<()> {
    tx.upsert_account(&account_row(op, acc), actor)?;
    if let Some(a) = attrs {
        tx.set_account_attrs(&op.system, &op.person_id, a)?;
    }
    Ok(())
}

/// Record a mover's update with its success: the login rename first (so the account row
/// and its memberships move with it), then the attributes written. Returns what to say
/// with the success.
fn moved_in_tx(
    tx: &mut crate::store::Tx<'_>,
    op: &OpRow,
    m: Moved,
    actor: &str,
) -> Result<Option<String>> {
    let mut note = m.note;
    if let Some((from, to)) = &m.renamed
        && !tx.rename_login(&op.system, &op.person_id, from, to, actor)?
    {
        // Taken in the store since the worker looked (a race): the target has the new
        // login, the store keeps the old one until an admin settles it.
        note = Some(format!(
            "{} was renamed to {to:?} in {}, but accessdesk could not record it: {to:?} is held by another account in the store; their login stays {from:?} here",
            op.person_id, op.system
        ));
    }
    tx.set_account_attrs(&op.system, &op.person_id, &m.attrs)?;
    Ok(note)
}

fn account_row(op: &OpRow, acc: &RemoteAccount) -> AccountRow {
    AccountRow {
        system: op.system.clone(),
        person_id: Some(op.person_id.clone()),
        login: acc.login.clone(),
        external_id: Some(acc.external_id.clone()),
        active: acc.active,
    }
}

/// Whether `acc` is the account the credentials act as: by login (the principal itself,
/// or the last part of an ARN-like principal, or the user name the adapter reports) or by
/// the vendor's user id.
fn is_own_account(me: &crate::adapters::Identity, acc: &RemoteAccount) -> bool {
    let login = acc.login.as_str();
    let same = |s: &str| !s.is_empty() && s.eq_ignore_ascii_case(login);
    same(&me.principal)
        || me
            .principal
            .rsplit_once('/')
            .is_some_and(|(_, tail)| same(tail))
        || me.details.get("user_name").is_some_and(|u| same(u))
        || me
            .details
            .get("user_id")
            .is_some_and(|u| !u.is_empty() && *u == acc.external_id)
}

/// Write through what a successful operation changed, so the next plan sees it.
fn effect_in_tx(tx: &mut crate::store::Tx<'_>, op: &OpRow, actor: &str) -> Result<()> {
    if op.kind.on_account() {
        tx.set_account_inactive_by_external_id(&op.system, &op.person_id)?;
        return Ok(());
    }
    let acct = tx.account_for(&op.system, &op.person_id)?;
    match op.kind {
        OperationKind::AddMembership | OperationKind::RemoveMembership => {
            let login = acct
                .map(|a| a.login)
                .unwrap_or_else(|| op.person_id.clone());
            let ent = op.entitlement.clone().unwrap_or_default();
            let present = op.kind == OperationKind::AddMembership;
            tx.write_through_access(&op.system, &login, Some(&op.person_id), &ent, present)?;
        }
        OperationKind::Deactivate | OperationKind::Reactivate => {
            if let Some(mut a) = acct {
                a.active = op.kind == OperationKind::Reactivate;
                tx.upsert_account(&a, actor)?;
            }
        }
        OperationKind::CreateAccount
        | OperationKind::UpdateAttributes
        | OperationKind::DeactivateOrphan => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn acct(id: &str, login: &str) -> RemoteAccount {
        RemoteAccount {
            external_id: id.into(),
            login: login.into(),
            email: None,
            active: true,
            hris_id: None,
            attributes: Default::default(),
        }
    }

    fn me(principal: &str, details: &[(&str, &str)]) -> crate::adapters::Identity {
        crate::adapters::Identity {
            principal: principal.into(),
            scopes: Vec::new(),
            details: details
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    #[test]
    fn the_credentials_own_account_is_recognised_however_the_vendor_names_it() {
        // Okta: the token's admin by login, or by user id.
        let okta = me("Admin@Example.com", &[("user_id", "00u1")]);
        assert!(is_own_account(&okta, &acct("00u9", "admin@example.com")));
        assert!(is_own_account(&okta, &acct("00u1", "renamed@example.com")));
        assert!(!is_own_account(&okta, &acct("00u2", "stray@example.com")));
        // IAM: an ARN whose last part is the user name, and the user name itself.
        let iam = me(
            "arn:aws:iam::123456789012:user/accessdesk-admin",
            &[("user_name", "accessdesk-admin")],
        );
        assert!(is_own_account(
            &iam,
            &acct("accessdesk-admin", "accessdesk-admin")
        ));
        assert!(!is_own_account(&iam, &acct("hand.made", "hand.made")));
        // Nothing known: nothing matches (an empty user id is not a match).
        let none = me("", &[("user_id", "")]);
        assert!(!is_own_account(&none, &acct("", "")));
    }
}
