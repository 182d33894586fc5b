//! Processing stored webhook deliveries, oldest first, off the request path.
//!
//! Each delivery's events ([`crate::sources::events`]) are done in turn:
//! - an HR record: mapped, validated, upserted, planned for that one person and queued
//!   ([`crate::sources::ingest`]); a mapping or validation failure fails the delivery
//!   (its outcome names the source, the record and the field), a guard holds it;
//! - a change made in a target system: that system is reconciled as soon as possible
//!   (coalesced: one read of the system however many events arrive meanwhile);
//! - anything else is noted and ignored.
//!
//! A delivery is `done`, `failed` or `held` afterwards, with its outcome as JSON. A store
//! error leaves it `pending` to be tried again (at most [`MAX_ATTEMPTS`] times). A crash
//! part-way leaves it `pending` too; doing it again queues nothing twice (see
//! [`crate::sources::ingest`]).

use crate::config::Catalog;
use crate::config::systems::GuardThresholds;
use crate::policy::PolicySet;
use crate::sources::events::{self, Event};
use crate::sources::ingest::{self, Context, Refused};
use crate::store::Store;
use crate::store::inbox::InboxRow;
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{Notify, mpsc, watch};

use super::webhooks::SourceSet;

/// How many times a delivery whose processing hit a store error is tried.
pub const MAX_ATTEMPTS: i64 = 5;

/// What processing needs.
pub struct Processor {
    pub store: Mutex<Store>,
    pub sources: Arc<SourceSet>,
    pub catalog: Arc<Catalog>,
    pub policies: Arc<PolicySet>,
    pub guard: GuardThresholds,
    /// Accounts to look at now, in the systems that reported a change (the scheduler's
    /// nudges).
    pub nudge: mpsc::UnboundedSender<super::schedule::Nudge>,
    /// When deliveries last arrived: while they keep arriving, the processor takes one
    /// delivery at a time and gives the inbox writer the store's write lock in between
    /// (a delivery's 2xx waits on that lock; processing waits in the durable inbox).
    pub ingest: Arc<super::webhooks::IngestClock>,
}

/// How recent an arrival makes the processor give way, and for how long it pauses.
const GIVE_WAY: Duration = Duration::from_millis(10);

/// One delivery's result.
#[derive(Debug, Clone, PartialEq)]
pub struct Done {
    pub status: &'static str,
    pub outcome: Value,
}

impl Processor {
    /// Process one delivery (the store is the processor's).
    pub fn process(&self, store: &mut Store, row: &InboxRow) -> Done {
        let fail = |v: Value| Done {
            status: "failed",
            outcome: v,
        };
        let Some(source) = self.sources.get(&row.source) else {
            return fail(
                json!({"error": format!("source {:?} is no longer in sources.toml", row.source)}),
            );
        };
        let evs = match events::parse(source.kind, &row.body, row.event_type.as_deref()) {
            Ok(e) => e,
            Err(e) => {
                return fail(json!({"error": "bad_payload", "at": e.at, "message": e.message}));
            }
        };
        let actor = format!("source:{}", row.source);
        let ctx = Context {
            catalog: &self.catalog,
            policies: &self.policies,
            guard: &self.guard,
            actor: &actor,
        };
        let cause = format!("source:{}:{}", row.source, row.delivery_id);
        let single = evs.len() == 1;
        let today = chrono::Utc::now().date_naive();
        let mut status = "done";
        let mut results = Vec::new();
        for ev in evs {
            match ev {
                Event::Record {
                    intent,
                    record,
                    record_ref,
                } => {
                    let record_id = record.get("id").and_then(|v| match v {
                        Value::String(s) => Some(s.clone()),
                        Value::Number(n) => Some(n.to_string()),
                        _ => None,
                    });
                    let r = ingest::to_person_by_record(
                        source,
                        &record,
                        record_id.as_deref(),
                        &record_ref,
                        intent,
                        store,
                        today,
                    )
                    .and_then(|p| {
                        ingest::apply_person(store, &ctx, &p, &cause, single.then_some(row.id))
                    });
                    match r {
                        Ok(a) => {
                            let _ = store.write(|tx| {
                                tx.bump_source_stat(
                                    &row.source,
                                    &format!("changes:{}", a.change.as_str()),
                                    1,
                                )
                            });
                            results.push(json!({"record": record_ref, "person": a.person,
                                "change": a.change.as_str(), "operations": a.ops}));
                            if single {
                                // Finished in the transaction that queued.
                                return Done {
                                    status: "done",
                                    outcome: results.pop().unwrap_or(Value::Null),
                                };
                            }
                        }
                        Err(Refused::Failed(e)) => {
                            return Done {
                                status: "pending",
                                outcome: json!({"error": "failed", "message": e.to_string()}),
                            };
                        }
                        Err(r) => {
                            status = match (&r, status) {
                                (Refused::Held { .. }, "done") => "held",
                                _ => "failed",
                            };
                            tracing::warn!(source = %row.source, delivery = %row.delivery_id, problem = %r, "a delivery's record was not applied");
                            results.push(r.to_json());
                        }
                    }
                }
                Event::Observe { account, why } => {
                    let system = source.system.clone().unwrap_or_default();
                    let _ = self.nudge.send(super::schedule::Nudge {
                        system: system.clone(),
                        account: Some(account.clone()),
                        why: why.clone(),
                    });
                    results.push(json!({"observe": system, "account": account, "why": why}));
                }
                Event::Challenge(_) => results.push(json!({"ignored": "handshake"})),
                Event::Ignored(why) => results.push(json!({"ignored": why})),
            }
        }
        Done {
            status,
            outcome: json!({"events": results}),
        }
    }

    /// Process up to `limit` pending deliveries; returns how many were taken, and whether
    /// it stopped early to give way to arriving deliveries (at least one is always taken).
    pub fn process_pending(&self, limit: usize) -> crate::Result<(usize, bool)> {
        let mut store = self.store.lock().unwrap_or_else(|p| p.into_inner());
        let rows = store.inbox_pending(limit)?;
        for (i, row) in rows.iter().enumerate() {
            if i > 0 && self.ingest.busy_within(GIVE_WAY.as_millis() as u64) {
                return Ok((i, true));
            }
            let done = self.process(&mut store, row);
            let already = done.status == "done"
                && store.inbox_row(row.id)?.is_some_and(|r| r.status == "done");
            if already {
                // Finished in the transaction that queued its operations.
            } else {
                let status = if done.status == "pending" && row.attempts + 1 >= MAX_ATTEMPTS {
                    "failed"
                } else {
                    done.status
                };
                store.write(|tx| {
                    tx.inbox_finish(row.id, status, &done.outcome)?;
                    if status != "pending" {
                        tx.bump_source_stat(&row.source, status, 1)?;
                    }
                    Ok(())
                })?;
            }
            if done.status == "done" && already {
                store.write(|tx| tx.bump_source_stat(&row.source, "done", 1))?;
            }
        }
        Ok((rows.len(), false))
    }
}

/// Process deliveries as they arrive (woken by `ready`, and once a second) until `stop`.
pub async fn run(p: Arc<Processor>, ready: Arc<Notify>, mut stop: watch::Receiver<bool>) {
    {
        let p = p.clone();
        let _ = tokio::task::spawn_blocking(move || {
            let mut store = p.store.lock().unwrap_or_else(|e| e.into_inner());
            if let Err(e) = store.write(|tx| tx.inbox_prune()) {
                tracing::warn!(error = %e, "pruning old delivery bodies");
            }
        })
        .await;
    }
    loop {
        let p2 = p.clone();
        let taken = tokio::task::spawn_blocking(move || p2.process_pending(64)).await;
        let busy = match taken {
            Ok(Ok((n, gave_way))) => {
                if gave_way {
                    tokio::time::sleep(GIVE_WAY).await;
                }
                n > 0
            }
            Ok(Err(e)) => {
                tracing::error!(error = %e, "processing webhook deliveries");
                false
            }
            Err(e) => {
                tracing::error!(error = %e, "the delivery processor failed");
                false
            }
        };
        if *stop.borrow() {
            return;
        }
        if !busy {
            tokio::select! {
                _ = stop.wait_for(|s| *s) => return,
                _ = ready.notified() => {}
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
        }
    }
}
