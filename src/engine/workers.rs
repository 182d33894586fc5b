//! Workers: a scheduler on tokio that drives queued operations through the adapters.
//!
//! - Per-system concurrency (from systems.toml), and each adapter's own shared rate limiter.
//! - Order: an operation runs only when everything it depends on has succeeded (a person's
//!   account before its memberships; a system's dependencies' accounts before its own).
//!   Independent systems and people run in parallel. Leavers go first.
//! - Retries: RateLimited and Transient errors wait with exponential backoff (full jitter,
//!   at least the vendor's Retry-After) until the retry window closes. Permanent errors fail
//!   the operation and block what depends on it, with the reason; nothing else stops and
//!   nothing that succeeded is rolled back. Conflict is success (every operation is
//!   idempotent); NotFound is success for removals and deactivations.
//! - Eventual consistency: on systems configured with `verify = true`, a
//!   successful write goes to `verifying` and is polled until the effect is observed, or
//!   fails with "not observed after N s".
//! - Crash safety: every transition is committed with its audit event before and after
//!   the side effect. On start, operations left `running` are checked against the target:
//!   if the effect is there they succeed, otherwise they are retried. Creation looks the
//!   account up before creating, so a retry never duplicates an account.

use super::identity::Login;
use crate::adapters::{
    AccountSpec, Adapter, AdapterError, EntitlementTarget, ErrorClass, RemoteAccount,
};
use crate::config::Catalog;
use crate::config::systems::OnLeave;
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

enum Outcome {
    /// The effect is in place. `write_through`: record it in the store as the operation
    /// is marked succeeded (one transaction).
    Done {
        write_through: bool,
    },
    /// Written; waiting to be observed.
    Verify,
    Retry(AdapterError),
    Fail(AdapterError),
    /// Not to be run after all (the person left, or is no longer leaving); nothing was sent.
    Cancel(String),
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

    fn runtime(&self, system: &str) -> Result<&SystemRuntime> {
        self.systems
            .get(system)
            .ok_or_else(|| Error::Failed(format!("no adapter is configured for system {system:?}")))
    }

    /// The adapter driving a system (for status and connection tests; see engine/status.rs).
    pub fn adapter(&self, system: &str) -> Option<&Arc<dyn Adapter>> {
        self.systems.get(system).map(|r| &r.adapter)
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
        loop {
            if stop.as_ref().is_some_and(|s| *s.borrow()) {
                break;
            }
            // Reap finished work.
            while let Some(done) = tasks.try_join_next() {
                match done {
                    Ok((op, outcome)) => {
                        looking.remove(&op.id);
                        self.settle(&op, outcome, &mut summary).await?
                    }
                    Err(e) => return Err(Error::Failed(format!("a worker task failed: {e}"))),
                }
            }
            let now = self.now();
            let mut dispatched = 0;
            for (name, rt) in &self.systems {
                let free = rt.permits.available_permits();
                if free == 0 {
                    continue;
                }
                let ready = self.db(|s| s.ready_ops_for(name, now, free))?;
                for op in ready {
                    let Ok(permit) = rt.permits.clone().try_acquire_owned() else {
                        break;
                    };
                    let actor = self.cfg.actor.clone();
                    let claimed = self.db(|s| {
                        s.write(|tx| {
                            tx.transition(
                                op.id,
                                &[
                                    OperationStatus::Queued,
                                    OperationStatus::RetryWait,
                                    OperationStatus::Scheduled,
                                ],
                                OperationStatus::Running,
                                Change {
                                    count_attempt: true,
                                    ..Default::default()
                                },
                                &actor,
                            )
                        })
                    })?;
                    if !claimed {
                        continue;
                    }
                    self.emit(&op, OperationStatus::Running, None);
                    let me = self.clone();
                    let op = Arc::new(op);
                    tasks.spawn(async move {
                        let out = me.execute(&op).await;
                        drop(permit);
                        (op, out)
                    });
                    dispatched += 1;
                }
                // Verifying operations that are due for a look.
                let due = self.db(|s| s.verifying_due(name, now, 64))?;
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
                    dispatched += 1;
                }
            }
            if tasks.is_empty() && dispatched == 0 {
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
            // Wait for a task to finish or a short poll, whichever is first.
            tokio::select! {
                Some(done) = tasks.join_next() => {
                    match done {
                        Ok((op, outcome)) => {
                            looking.remove(&op.id);
                            self.settle(&op, outcome, &mut summary).await?
                        }
                        Err(e) => return Err(Error::Failed(format!("a worker task failed: {e}"))),
                    }
                }
                _ = tokio::time::sleep(self.cfg.idle_poll) => {}
            }
        }
        // Let in-flight work finish and be recorded.
        while let Some(done) = tasks.join_next().await {
            if let Ok((op, outcome)) = done {
                self.settle(&op, outcome, &mut summary).await?;
            }
        }
        Ok(summary)
    }

    /// Write an operation's outcome.
    async fn settle(
        &self,
        op: &OpRow,
        outcome: Result<Outcome>,
        summary: &mut RunSummary,
    ) -> Result<()> {
        let actor = self.cfg.actor.clone();
        let from = [OperationStatus::Running, OperationStatus::Verifying];
        let outcome = match outcome {
            Ok(o) => o,
            Err(e) => Outcome::Fail(AdapterError::new(
                ErrorClass::Permanent,
                &op.system,
                e.to_string(),
            )),
        };
        match outcome {
            Outcome::Done { write_through } => {
                let attempted = op.status != OperationStatus::Verifying;
                self.db(|s| {
                    s.write(|tx| {
                        if attempted {
                            tx.record_attempt(op.id, op.attempts + 1, Utc::now(), "ok", None)?;
                        }
                        if write_through {
                            effect_in_tx(tx, op, &actor)?;
                        }
                        tx.transition(
                            op.id,
                            &from,
                            OperationStatus::Succeeded,
                            Change {
                                clear_error: true,
                                ..Default::default()
                            },
                            &actor,
                        )
                    })
                })?;
                summary.succeeded += 1;
                self.emit(op, OperationStatus::Succeeded, None);
            }
            Outcome::Verify => {
                self.db(|s| {
                    s.write(|tx| tx.record_attempt(op.id, op.attempts + 1, Utc::now(), "ok", None))
                })?;
                let until = Utc::now()
                    + chrono::Duration::from_std(self.cfg.verify_deadline).unwrap_or_default();
                let next = Utc::now()
                    + chrono::Duration::from_std(self.cfg.verify_poll).unwrap_or_default();
                self.db(|s| {
                    s.write(|tx| {
                        tx.transition(
                            op.id,
                            &[OperationStatus::Running],
                            OperationStatus::Verifying,
                            Change {
                                verify_until: Some(until),
                                next_attempt_at: Some(next),
                                ..Default::default()
                            },
                            &actor,
                        )
                    })
                })?;
                self.emit(op, OperationStatus::Verifying, None);
            }
            Outcome::Retry(e) => {
                let first = self
                    .db(|s| s.first_attempt_at(op.id))?
                    .and_then(|t| parse_ts(&t))
                    .unwrap_or_else(Utc::now);
                let elapsed = (Utc::now() - first).to_std().unwrap_or_default();
                if elapsed >= self.cfg.retry_window {
                    return self
                        .fail(
                            op,
                            e,
                            summary,
                            &format!("still failing after {} s of retries", elapsed.as_secs()),
                        )
                        .await;
                }
                let exp = self
                    .cfg
                    .retry_base
                    .saturating_mul(1u32 << op.attempts.min(16))
                    .min(self.cfg.retry_cap);
                let jitter = Duration::from_secs_f64(rand::random::<f64>() * exp.as_secs_f64());
                let delay = e.class.retry_after().map_or(jitter, |ra| ra.max(jitter));
                let next = Utc::now() + chrono::Duration::from_std(delay).unwrap_or_default();
                let err = info(&e);
                self.db(|s| {
                    s.write(|tx| {
                        tx.record_attempt(op.id, op.attempts + 1, Utc::now(), "retry", Some(&err))?;
                        tx.transition(
                            op.id,
                            &[OperationStatus::Running],
                            OperationStatus::RetryWait,
                            Change {
                                next_attempt_at: Some(next),
                                error: Some(&err),
                                ..Default::default()
                            },
                            &actor,
                        )
                    })
                })?;
                summary.retried += 1;
                self.emit(op, OperationStatus::RetryWait, Some(e.to_string()));
            }
            Outcome::Fail(e) => return self.fail(op, e, summary, "").await,
            Outcome::Cancel(why) => {
                self.db(|s| {
                    s.write(|tx| {
                        tx.cancel_with_dependents(
                            op.id,
                            &[OperationStatus::Running],
                            &why,
                            &format!("cancelled with #{}: {why}", op.id),
                            &actor,
                        )
                    })
                })?;
                self.emit(op, OperationStatus::Cancelled, Some(why));
            }
        }
        Ok(())
    }

    async fn fail(
        &self,
        op: &OpRow,
        e: AdapterError,
        summary: &mut RunSummary,
        extra: &str,
    ) -> Result<()> {
        let actor = self.cfg.actor.clone();
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
        let blocked = self.db(|s| {
            s.write(|tx| {
                tx.record_attempt(op.id, op.attempts + 1, Utc::now(), "failed", Some(&err))?;
                tx.transition(
                    op.id,
                    &[OperationStatus::Running, OperationStatus::Verifying],
                    OperationStatus::Failed,
                    Change {
                        error: Some(&err),
                        ..Default::default()
                    },
                    &actor,
                )?;
                let deps = tx.dependents(op.id)?;
                let mut n = 0;
                for d in deps {
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
                        &actor,
                    )? {
                        n += 1;
                    }
                }
                Ok(n)
            })
        })?;
        summary.failed += 1;
        summary.blocked += blocked;
        self.emit(op, OperationStatus::Failed, Some(err.message));
        Ok(())
    }

    fn classify(&self, op: &OpRow, r: std::result::Result<(), AdapterError>) -> Outcome {
        match r {
            Ok(()) => Outcome::Done {
                write_through: true,
            },
            Err(e) => match (&e.class, op.kind) {
                (ErrorClass::Conflict, _) => Outcome::Done {
                    write_through: true,
                },
                (
                    ErrorClass::NotFound,
                    OperationKind::RemoveMembership | OperationKind::Deactivate,
                ) => Outcome::Done {
                    write_through: true,
                },
                (c, _) if c.is_retryable() => Outcome::Retry(e),
                _ => Outcome::Fail(e),
            },
        }
    }

    fn person(&self, op: &OpRow) -> Result<crate::model::Person> {
        self.db(|s| s.find_person(&op.person_id))?
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
    ) -> std::result::Result<Option<String>, AdapterError> {
        let (stored, login) = self
            .db(|s| {
                Ok((
                    s.account_for(&op.system, &op.person_id)?,
                    s.login_of(&op.system, &op.person_id)?,
                ))
            })
            .map_err(|e| AdapterError::new(ErrorClass::Transient, &op.system, e.to_string()))?;
        if let Some(a) = stored.and_then(|a| a.external_id) {
            return Ok(Some(a));
        }
        // No login assigned: accessdesk never created an account for them here.
        let Some(login) = login else {
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
        let row = AccountRow {
            system: op.system.clone(),
            person_id: Some(op.person_id.clone()),
            login: acc.login.clone(),
            external_id: Some(acc.external_id.clone()),
            active: acc.active,
        };
        let actor = self.cfg.actor.clone();
        self.db(|s| s.write(|tx| tx.upsert_account(&row, &actor)))?;
        Ok(())
    }

    fn remember_attrs(
        &self,
        op: &OpRow,
        attrs: &std::collections::BTreeMap<String, String>,
    ) -> Result<()> {
        self.db(|s| s.write(|tx| tx.set_account_attrs(&op.system, &op.person_id, attrs)))
    }

    /// Whether the op still makes sense for its person right now: nothing is granted to a
    /// leaver, and nobody who is no longer leaving is deactivated.
    fn still_wanted(&self, op: &OpRow) -> Result<Option<String>> {
        let person = self.person(op)?;
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

    async fn execute(&self, op: &OpRow) -> Result<Outcome> {
        let rt = self.runtime(&op.system)?;
        if let Some(why) = self.still_wanted(op)? {
            return Ok(Outcome::Cancel(why));
        }
        let r: std::result::Result<(), AdapterError> = async {
            match op.kind {
                OperationKind::CreateAccount => {
                    let person = self.person(op).map_err(|e| {
                        AdapterError::new(ErrorClass::Permanent, &op.system, e.to_string())
                    })?;
                    let (acc, written) = match self.assign_login(op, rt, &person).await? {
                        // An adopted account's attributes are not known to be current: the
                        // next plan compares and updates them.
                        Login::Adopt(acc) => (acc, None),
                        Login::Assigned(login) => {
                            let spec = AccountSpec::for_person(&person, rt.kind, &login);
                            let acc = self.create(op, rt, &person, &login).await?;
                            (acc, Some(spec.synced_attributes()))
                        }
                    };
                    self.remember_account(op, &acc)
                        .and_then(|_| match written {
                            Some(a) => self.remember_attrs(op, &a),
                            None => Ok(()),
                        })
                        .map_err(|e| {
                            AdapterError::new(ErrorClass::Transient, &op.system, e.to_string())
                        })
                }
                OperationKind::AddMembership | OperationKind::RemoveMembership => {
                    let target = self.target(op)?;
                    let acc = self.account(op, rt).await?.ok_or_else(|| {
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
                    match res {
                        Ok(()) => Ok(()),
                        Err(e) if e.class == ErrorClass::Conflict => Ok(()),
                        Err(e)
                            if e.class == ErrorClass::NotFound
                                && op.kind == OperationKind::RemoveMembership =>
                        {
                            Ok(())
                        }
                        Err(e) => Err(e),
                    }
                }
                OperationKind::Deactivate | OperationKind::Reactivate => {
                    let Some(acc) = self.account(op, rt).await? else {
                        return if op.kind == OperationKind::Deactivate {
                            Ok(())
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
                            rt.adapter.delete_account(&acc).await?;
                        }
                        Ok(())
                    } else {
                        rt.adapter.reactivate_account(&acc).await
                    }
                }
                OperationKind::UpdateAttributes => {
                    let person = self.person(op).map_err(|e| {
                        AdapterError::new(ErrorClass::Permanent, &op.system, e.to_string())
                    })?;
                    let acc = self.account(op, rt).await?.ok_or_else(|| {
                        AdapterError::new(ErrorClass::NotFound, &op.system, "no account to update")
                    })?;
                    let login = self
                        .db(|s| s.login_of(&op.system, &op.person_id))
                        .map_err(|e| {
                            AdapterError::new(ErrorClass::Transient, &op.system, e.to_string())
                        })?
                        .map(|l| l.login)
                        .unwrap_or_default();
                    let spec = AccountSpec::for_person(&person, rt.kind, &login);
                    rt.adapter.update_account(&acc, &spec).await?;
                    self.remember_attrs(op, &spec.synced_attributes())
                        .map_err(|e| {
                            AdapterError::new(ErrorClass::Transient, &op.system, e.to_string())
                        })
                }
            }
        }
        .await;
        let outcome = self.classify(op, r);
        // On verified systems the effect is written through now and the operation waits
        // in `verifying`; elsewhere it is written with the success, in one transaction.
        if matches!(outcome, Outcome::Done { .. })
            && rt.verify
            && op.kind != OperationKind::CreateAccount
        {
            self.record_effect(op, None).await?;
            return Ok(Outcome::Verify);
        }
        Ok(outcome)
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
            OperationKind::Deactivate => Ok(acc.is_none_or(|a| !a.active)),
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

    /// Create the person's account under their assigned login. On a retry the first
    /// attempt may have created it before its answer was lost, so look first; "already
    /// exists" is read back and adopted only with proof that it is theirs.
    async fn create(
        &self,
        op: &OpRow,
        rt: &SystemRuntime,
        person: &crate::model::Person,
        login: &str,
    ) -> std::result::Result<RemoteAccount, AdapterError> {
        let spec = AccountSpec::for_person(person, rt.kind, login);
        // A first attempt was never sent before (attempts are counted when an operation
        // is claimed, before the call; one left running by a crash is settled by
        // `recover`), so it creates straight away.
        if op.attempts > 0
            && let Some(a) = rt.adapter.get_account_by_login(login).await?
        {
            return self.require_proof(op, rt, a);
        }
        self.db(|s| s.write(|tx| tx.mark_create_sent(&op.system, &op.person_id)))
            .map_err(|e| AdapterError::new(ErrorClass::Transient, &op.system, e.to_string()))?;
        match rt.adapter.create_account(&spec).await {
            Ok(a) => Ok(a),
            Err(e) if e.class == ErrorClass::Conflict => {
                match rt.adapter.get_account_by_login(login).await? {
                    Some(a) => self.require_proof(op, rt, a),
                    // "Already exists" but not readable yet (the vendor is eventually
                    // consistent): look again later rather than count the create as done
                    // without knowing the account.
                    None => {
                        let mut later = AdapterError::new(
                            ErrorClass::Transient,
                            &op.system,
                            format!(
                                "{login} already exists in {} but cannot be read yet ({}); looking again",
                                op.system, e.message
                            ),
                        );
                        later.status = e.status;
                        later.vendor_code = e.vendor_code.clone();
                        later.request = e.request.clone();
                        Err(later)
                    }
                }
            }
            Err(e) => Err(e),
        }
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
            }),
            Ok(false) | Err(_) if Utc::now() >= until => Ok(Outcome::Fail(AdapterError::new(
                ErrorClass::Permanent,
                &op.system,
                format!(
                    "not observed after {} s",
                    self.cfg.verify_deadline.as_secs()
                ),
            ))),
            _ => {
                let next = Utc::now()
                    + chrono::Duration::from_std(self.cfg.verify_poll).unwrap_or_default();
                let actor = self.cfg.actor.clone();
                self.db(|s| s.write(|tx| tx.set_next_attempt(op.id, next, &actor)))?;
                Ok(Outcome::Verify)
            }
        }
    }
}

/// Write through what a successful operation changed, so the next plan sees it.
fn effect_in_tx(tx: &mut crate::store::Tx<'_>, op: &OpRow, actor: &str) -> Result<()> {
    let acct = tx.account_for(&op.system, &op.person_id)?;
    match op.kind {
        OperationKind::AddMembership | OperationKind::RemoveMembership => {
            let login = acct
                .map(|a| a.login)
                .unwrap_or_else(|| op.person_id.clone());
            let ent = op.entitlement.clone().unwrap_or_default();
            let present = op.kind == OperationKind::AddMembership;
            tx.set_observed(
                &op.system,
                &login,
                Some(&op.person_id),
                &ent,
                present,
                actor,
            )?;
        }
        OperationKind::Deactivate | OperationKind::Reactivate => {
            if let Some(mut a) = acct {
                a.active = op.kind == OperationKind::Reactivate;
                tx.upsert_account(&a, actor)?;
            }
        }
        OperationKind::CreateAccount | OperationKind::UpdateAttributes => {}
    }
    Ok(())
}
