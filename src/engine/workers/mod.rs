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
//! - One set of workers per home ([`lease`]): a process that finds another running the
//!   home's workers leaves the queue to it.

mod execute;
pub mod lease;
mod scheduler;
mod settle;
#[cfg(test)]
mod tests;
mod verify;

use crate::adapters::{Adapter, AdapterError, RemoteAccount};
use crate::config::Catalog;
use crate::model::{OperationKind, OperationStatus};
use crate::store::Store;
use crate::store::access::AccountRow;
use crate::store::queue::{ErrorInfo, OpRow};
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
}
