//! The console's side of the engine: what it runs against, the loader thread, and jobs.
//! Jobs run in tasks (database work on the blocking pool) and report back through the
//! same channel as keys and snapshots.

use super::data::{CredentialProbe, LiveStatus, Loader, Query};
use super::reducer::Msg;
use super::state::{Job, OpVerb};
use crate::config::Catalog;
use crate::engine::admin::{self, Action};
use crate::engine::workers::Engine;
use crate::policy::PolicySet;
use crate::store::Store;
use crate::{Error, Result};
use std::path::PathBuf;
use std::sync::Arc;
use tokio::sync::mpsc::UnboundedSender;

pub mod reconcile;

/// Events from outside the store to show as they happen (the demo's scenario): called
/// with how many were already seen, returns the newer ones.
pub type EventFeed = Arc<dyn Fn(usize) -> Vec<String> + Send + Sync>;

/// Everything the console runs against.
#[derive(Clone)]
pub struct Backend {
    pub db_path: PathBuf,
    pub catalog: Arc<Catalog>,
    pub policies: Option<Arc<PolicySet>>,
    /// The engine, when this console drives the queue itself.
    pub engine: Option<Arc<Engine>>,
    pub probe: Option<Arc<dyn CredentialProbe>>,
    /// Shown on every page (e.g. "credentials are kept in memory").
    pub notices: Vec<String>,
    /// Who the console acts as in the audit log.
    pub actor: String,
    /// Where user themes live (HOME/themes).
    pub theme_dir: Option<PathBuf>,
    pub feed: Option<EventFeed>,
}

struct EngineStatus(Arc<Engine>);

impl LiveStatus for EngineStatus {
    fn rate(&self, system: &str) -> Option<crate::engine::status::LimiterSnapshot> {
        self.0.rate_status(system)
    }
}

impl Backend {
    pub fn loader(&self) -> Result<Loader> {
        let store = Store::open(&self.db_path)?;
        let live: Option<Arc<dyn LiveStatus>> = self
            .engine
            .as_ref()
            .map(|e| Arc::new(EngineStatus(e.clone())) as Arc<dyn LiveStatus>);
        Ok(Loader::new(
            store,
            self.catalog.clone(),
            self.policies.clone(),
            live,
            self.probe.clone(),
        ))
    }
}

/// Start the loader on its own thread. It answers the newest query only (queries that
/// pile up while it reads are coalesced). Dropping the sender stops it.
pub fn spawn_loader(
    mut loader: Loader,
    out: UnboundedSender<Msg>,
) -> std::sync::mpsc::Sender<Query> {
    let (tx, rx) = std::sync::mpsc::channel::<Query>();
    std::thread::Builder::new()
        .name("console-loader".into())
        .spawn(move || {
            while let Ok(mut q) = rx.recv() {
                let mut credentials = q.credentials;
                while let Ok(newer) = rx.try_recv() {
                    credentials |= newer.credentials;
                    q = newer;
                }
                q.credentials = credentials;
                let msg = match loader.load(&q, chrono::Utc::now()) {
                    Ok(s) => Msg::Data(Box::new(s)),
                    Err(e) => Msg::LoadFailed(super::data::describe(&e)),
                };
                if out.send(msg).is_err() {
                    break;
                }
            }
        })
        .ok();
    tx
}

/// Run one job and report the outcome.
pub fn spawn_job(backend: &Backend, job: Job, out: UnboundedSender<Msg>) {
    let b = backend.clone();
    tokio::spawn(async move {
        let result = match job.clone() {
            // Jobs that report as they go.
            Job::Observe { system } => reconcile::observe(&b, system, Some(out.clone())).await,
            Job::Findings {
                ids,
                verb,
                reason,
                until,
            } => reconcile::remediate(&b, ids, verb, reason, until, Some(out.clone())).await,
            _ => run_job(&b, &job).await,
        }
        .map_err(|e| super::data::describe(&e));
        let _ = out.send(Msg::Done { job, result });
    });
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::Failed(format!("a console task failed: {e}")))?
}

fn admin_action(v: OpVerb) -> Action {
    match v {
        OpVerb::Retry => Action::Retry,
        OpVerb::Skip => Action::Skip,
        OpVerb::Cancel => Action::Cancel,
    }
}

pub async fn run_job(b: &Backend, job: &Job) -> Result<String> {
    let db = b.db_path.clone();
    let actor = b.actor.clone();
    match job.clone() {
        Job::Decide {
            ids,
            approve,
            reason,
        } => {
            blocking(move || {
                let mut store = Store::open(&db)?;
                let mut done = 0;
                for id in &ids {
                    admin::decide(&mut store, *id, approve, &actor, &reason)?;
                    done += 1;
                }
                Ok(format!(
                    "{} {done} grant(s); recorded in the audit log",
                    if approve { "approved" } else { "rejected" }
                ))
            })
            .await
        }
        Job::Ops { ids, verb } => {
            blocking(move || {
                let mut store = Store::open(&db)?;
                let why = format!("{} from the console", verb.word().to_lowercase());
                let mut changed = 0;
                for id in &ids {
                    if admin::act(&mut store, *id, admin_action(verb), &actor, &why)? {
                        changed += 1;
                    }
                }
                Ok(format!(
                    "{}: {changed} of {} operation(s) changed",
                    verb.word(),
                    ids.len()
                ))
            })
            .await
        }
        Job::Group { key, verb } => {
            blocking(move || {
                let mut store = Store::open(&db)?;
                let why = format!("{} group from the console", verb.word().to_lowercase());
                let n = admin::act_on_group(&mut store, &key, admin_action(verb), &actor, &why)?;
                Ok(format!("{}: {n} operation(s) in {key}", verb.word()))
            })
            .await
        }
        Job::VerifyAudit => {
            blocking(move || {
                let store = Store::open(&db)?;
                match store.audit_verify()? {
                    Ok(n) => Ok(format!("audit chain intact: {n} events verified")),
                    Err(p) => Err(Error::Failed(format!("audit chain BROKEN: {p}"))),
                }
            })
            .await
        }
        Job::Observe { system } => reconcile::observe(b, system, None).await,
        Job::Findings {
            ids,
            verb,
            reason,
            until,
        } => reconcile::remediate(b, ids, verb, reason, until, None).await,
        Job::ExportFindings { run } => blocking(move || reconcile::export(&db, run)).await,
        Job::TestConnection(system) => match &b.engine {
            Some(e) => e.test_connection(&system).await,
            None => Err(Error::Failed(
                "this console is not running the engine (read-only view)".into(),
            )),
        },
    }
}

/// The keychain (or the environment) as the Systems view's credential probe. It asks
/// whether an entry exists; the value is dropped at once and never reaches the console.
pub struct KeychainProbe(pub Option<crate::secrets::Keychain>);

impl CredentialProbe for KeychainProbe {
    fn present(
        &self,
        reference: &crate::config::systems::CredentialRef,
    ) -> std::result::Result<bool, String> {
        use crate::config::systems::CredentialRef;
        match reference {
            CredentialRef::Env(var) => Ok(std::env::var_os(var).is_some()),
            CredentialRef::Keyring(name) => match &self.0 {
                Some(k) => k
                    .lookup(name)
                    .map(|s| s.is_some())
                    .map_err(|e| e.to_string()),
                None => Err("no keychain is available".into()),
            },
        }
    }
}

/// Keep the engine working until `stop` (new plans, retries and approvals arrive while
/// the console is open).
pub async fn keep_engine_running(
    engine: Arc<Engine>,
    stop: tokio::sync::watch::Receiver<bool>,
) -> Result<()> {
    engine.run_until_stopped(stop).await.map(|_| ())
}
