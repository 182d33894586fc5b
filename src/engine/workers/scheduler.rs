//! The scheduler loop: each turn settles finished operations in one transaction, feeds
//! the queue from plan backlogs, and claims and starts what may run now (group commit).

use super::{Engine, Known, Outcome, RunSummary, parse_ts};
use crate::model::{OperationKind, OperationStatus};
use crate::store::queue::{Change, OpRow};
use crate::{Error, Result};
use std::sync::Arc;
use std::time::Duration;

/// After the first of several running operations finishes, how long the scheduler waits
/// for more before settling them together (group commit), and the most it gathers.
const GATHER_WAIT: Duration = Duration::from_micros(500);
const GATHER_MAX: usize = 1024;

/// A system with fewer ready operations than this gets more rows from the backlog, in
/// batches of about `FEED_ROWS` (a few tens of milliseconds of writing each).
const FEED_LOW: usize = 1024;
const FEED_ROWS: usize = 4096;

impl Engine {
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

    /// The home's workers lock ([`super::lease`]). When another process holds it:
    /// `run_until_idle` fails, naming the holder; `run_until_stopped` waits for it (the
    /// holder's workers carry out the queue meanwhile) and gives up when stopped (None).
    async fn workers_lock(
        &self,
        mut stop: Option<tokio::sync::watch::Receiver<bool>>,
        keep_polling: bool,
    ) -> Result<Option<super::lease::WorkersLock>> {
        use super::lease::{Acquired, try_acquire};
        let db = self.db(|s| Ok(s.path().to_path_buf()))?;
        let who = process_name();
        let mut told = false;
        loop {
            match try_acquire(&db, &who)? {
                Acquired::Held(l) => {
                    if told {
                        tracing::info!("this process now runs the home's workers");
                    }
                    return Ok(Some(l));
                }
                Acquired::Busy(holder) if !keep_polling => {
                    return Err(Error::usage(
                        format!("another process runs this home's workers ({holder})"),
                        "its workers carry out the queue; stop it first to run them here",
                    ));
                }
                Acquired::Busy(holder) => {
                    if !told {
                        tracing::warn!(holder = %holder, "another process runs this home's workers; this one waits (the queue is carried out by the other meanwhile)");
                        told = true;
                    }
                    let pause = tokio::time::sleep(Duration::from_secs(2));
                    match stop.as_mut() {
                        Some(s) => {
                            tokio::select! {
                                _ = s.wait_for(|v| *v) => return Ok(None),
                                _ = pause => {}
                            }
                        }
                        None => pause.await,
                    }
                }
            }
        }
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
        // Only one process runs a home's workers (recovery would otherwise take the
        // other's operations in flight for interrupted ones).
        let Some(_lock) = self.workers_lock(stop.clone(), keep_polling).await? else {
            return Ok(RunSummary::default());
        };
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
}

/// `accessdesk serve`: the program and its subcommand (the first argument that is not an
/// option or an option's value; `--home` and `--log-file` take one). Never more of argv.
fn process_name() -> String {
    let args: Vec<String> = std::env::args().collect();
    let program = args
        .first()
        .and_then(|a| std::path::Path::new(a).file_name())
        .map_or("accessdesk".to_string(), |n| {
            n.to_string_lossy().into_owned()
        });
    let mut takes_value = false;
    for a in args.iter().skip(1) {
        if takes_value {
            takes_value = false;
            continue;
        }
        if a == "--home" || a == "--log-file" {
            takes_value = true;
            continue;
        }
        if !a.starts_with('-') {
            return format!("{program} {a}");
        }
    }
    program
}
