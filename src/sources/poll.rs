//! Polling an HR API: each poll asks the source what changed since its cursor, reads
//! those records, and diffs them against the snapshot of the last polls (a digest per
//! record in `source_records`): a record whose digest is unchanged makes no work; the
//! others become joiner, mover and leaver changes ([`super::ingest`]).
//!
//! - **The mass-change guard** applies to each poll as to a CSV import: the poll's
//!   changed people are checked together (a dry run of the import) before any is applied;
//!   a poll the guard holds applies nothing, keeps its cursor, and says why in the
//!   source's state until an admin approves it (`accessdesk source poll NAME
//!   --approve-mass-change --reason ...`).
//! - **Resuming:** the cursor moves only when a poll has applied everything it read; a
//!   poll cut short (a crash, a failed page) is read again from the same cursor, and the
//!   records it had already applied are unchanged against their digests, so nothing is
//!   done twice and nothing appears that the source did not say.
//!
//! - **Snapshots:** a feed that can only list everyone (Workday) answers a snapshot; a
//!   record the last polls mapped to a person and that is missing from a *complete*
//!   snapshot has left (a leaver, judged by the guard with the rest). A snapshot the feed
//!   could not read consistently ([`Coverage::PartialSnapshot`]) infers no leaver.
//! - **Leavers by record id:** each applied record's person is kept beside its digest,
//!   so a deletion that carries only the source's id (BambooHR's `Deleted`, a worker gone
//!   from a snapshot) terminates the right person ([`ingest::leaver_by_record`]).
//!
//! Feeds: BambooHR (`changed` since the cursor, each changed employee's fields; the
//! first poll asks for every change since the epoch, which includes leavers) and Workday
//! (a snapshot of the Workers REST API or a RaaS report, [`super::workday`]).

use super::config::Source;
use super::ingest::{self, Context, Intent, Refused};
use crate::adapters::error::AResult;
use crate::import::{Approvals, FeedOptions, import_feed};
use crate::store::Store;
use serde::Serialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// One record a feed read.
#[derive(Debug, Clone, PartialEq)]
pub struct FeedRecord {
    /// The source's id for it (what digests are kept by).
    pub id: String,
    pub record: Value,
    /// The source deleted it: the person has left.
    pub deleted: bool,
}

/// What a feed's answer covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Coverage {
    /// The records changed since the cursor.
    #[default]
    Changes,
    /// Every record the source has: one that is missing has left.
    Snapshot,
    /// Every record as far as could be told, but not read consistently: nothing is
    /// inferred from what is missing.
    PartialSnapshot,
}

/// What a feed answered for one poll.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct FeedPage {
    pub records: Vec<FeedRecord>,
    /// The cursor for the next poll (None: keep the current one).
    pub cursor: Option<String>,
    pub coverage: Coverage,
}

/// An HR API that can be polled.
#[async_trait::async_trait]
pub trait Feed: Send + Sync {
    /// Everything changed since `cursor` (None: the first poll, everything).
    async fn changes(&self, cursor: Option<&str>) -> AResult<FeedPage>;
    /// A few records (for `source preview`), read without moving any cursor.
    async fn sample(&self, limit: usize) -> AResult<FeedPage>;
    /// Whether the source accepts the credential: what it said, or the error.
    async fn test(&self) -> AResult<String>;
}

/// The BambooHR fields a poll reads for each changed employee.
pub const BAMBOO_FIELDS: &[&str] = &[
    "employeeNumber",
    "firstName",
    "lastName",
    "preferredName",
    "displayName",
    "workEmail",
    "department",
    "division",
    "jobTitle",
    "location",
    "supervisorEid",
    "supervisorEmail",
    "status",
    "hireDate",
    "terminationDate",
    "lastChanged",
];

/// BambooHR as a feed.
pub struct BambooFeed(pub super::bamboohr::BambooClient);

impl BambooFeed {
    async fn read(&self, cursor: Option<&str>, limit: usize) -> AResult<FeedPage> {
        let since = cursor
            .and_then(|c| chrono::DateTime::parse_from_rfc3339(c).ok())
            .map(|t| t.with_timezone(&chrono::Utc))
            .unwrap_or(chrono::DateTime::UNIX_EPOCH);
        let changed = self.0.changed_since(since).await?;
        let mut records = Vec::with_capacity(changed.employees.len());
        for e in changed.employees.iter().take(limit) {
            let deleted = e.action == super::bamboohr::ChangeAction::Deleted;
            let record = if deleted {
                json!({"id": e.id})
            } else {
                self.0.employee(&e.id, BAMBOO_FIELDS).await?
            };
            records.push(FeedRecord {
                id: e.id.clone(),
                record,
                deleted,
            });
        }
        Ok(FeedPage {
            records,
            cursor: changed.latest.map(|t| t.to_rfc3339()),
            coverage: Coverage::Changes,
        })
    }
}

#[async_trait::async_trait]
impl Feed for BambooFeed {
    async fn changes(&self, cursor: Option<&str>) -> AResult<FeedPage> {
        self.read(cursor, usize::MAX).await
    }

    async fn sample(&self, limit: usize) -> AResult<FeedPage> {
        let mut page = self.read(None, limit).await?;
        page.cursor = None;
        Ok(page)
    }

    async fn test(&self) -> AResult<String> {
        self.0.test_connection().await
    }
}

/// Workday as a feed: each poll reads the whole tenant (a snapshot).
pub struct WorkdayFeed(pub super::workday::WorkdayClient);

impl WorkdayFeed {
    fn page(&self, records: Vec<Value>, coverage: Coverage) -> AResult<FeedPage> {
        let mut out = Vec::with_capacity(records.len());
        for (i, record) in records.into_iter().enumerate() {
            let Some(id) = super::workday::record_id(&record) else {
                return Err(crate::adapters::error::AdapterError::new(
                    crate::adapters::error::ErrorClass::Permanent,
                    "workday",
                    format!(
                        "record {} has no id, WID or Employee_ID (a RaaS report must include one of them)",
                        i + 1
                    ),
                ));
            };
            out.push(FeedRecord {
                id,
                record,
                deleted: false,
            });
        }
        Ok(FeedPage {
            records: out,
            cursor: None,
            coverage,
        })
    }
}

#[async_trait::async_trait]
impl Feed for WorkdayFeed {
    async fn changes(&self, _cursor: Option<&str>) -> AResult<FeedPage> {
        let snap = self.0.snapshot().await?;
        let coverage = if snap.complete {
            Coverage::Snapshot
        } else {
            Coverage::PartialSnapshot
        };
        self.page(snap.records, coverage)
    }

    async fn sample(&self, limit: usize) -> AResult<FeedPage> {
        let records = self.0.sample(limit).await?;
        self.page(records, Coverage::PartialSnapshot)
    }

    async fn test(&self) -> AResult<String> {
        self.0.test_connection().await
    }
}

/// A record's digest: SHA-256 of its JSON (serde_json writes object keys in order).
pub fn digest(record: &Value) -> String {
    hex::encode(Sha256::digest(record.to_string().as_bytes()))
}

/// What one poll did.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct PollReport {
    pub read: usize,
    pub unchanged: usize,
    pub applied: Vec<Value>,
    /// Records refused (mapping, validation, a held rehire), each naming its field.
    pub refused: Vec<Value>,
    /// Records that had left a complete snapshot (leavers among `applied`).
    pub gone: usize,
    /// The feed could not read a consistent snapshot: no leaver was inferred.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub partial: bool,
    /// The mass-change guard held the whole poll: why.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub held: Option<String>,
    pub cursor: Option<String>,
}

/// Apply what a feed read (the store side of a poll). `approval`: an admin's reason to
/// let a poll the mass-change guard holds through.
pub fn apply_page(
    store: &mut Store,
    ctx: &Context<'_>,
    source: &Source,
    page: &FeedPage,
    approval: Option<&str>,
) -> crate::Result<PollReport> {
    let mut report = PollReport {
        read: page.records.len(),
        partial: page.coverage == Coverage::PartialSnapshot,
        ..Default::default()
    };
    let today = chrono::Utc::now().date_naive();
    let gone = if page.coverage == Coverage::Snapshot {
        gone_records(store, &source.name, page)?
    } else {
        Vec::new()
    };
    // The changed records, as people (or refusals).
    let mut changed = Vec::new();
    let records = (page.records.iter().map(|r| (r, false))).chain(gone.iter().map(|r| (r, true)));
    for (r, is_gone) in records {
        let d = digest(&r.record);
        if store.record_digest(&source.name, &r.id)?.as_deref() == Some(d.as_str()) {
            if !is_gone {
                report.unchanged += 1;
            }
            continue;
        }
        let intent = if r.deleted {
            Intent::Terminate
        } else {
            Intent::Upsert
        };
        let record_ref = format!("record {}", r.id);
        match ingest::to_person_by_record(
            source,
            &r.record,
            Some(&r.id),
            &record_ref,
            intent,
            store,
            today,
        ) {
            Ok(p) => changed.push((r, d, p, is_gone)),
            Err(Refused::Failed(e)) => return Err(e),
            Err(refused) => report.refused.push(refused.to_json()),
        }
    }
    // The guard judges the poll as a whole, before anything is applied.
    let people: Vec<_> = changed.iter().map(|(_, _, p, _)| p.clone()).collect();
    if !people.is_empty() {
        let dry = import_feed(
            store,
            &people,
            Some(ctx.policies),
            ctx.actor,
            true,
            ctx.guard,
            &Approvals {
                mass_change: approval,
                ..Approvals::default()
            },
            &FeedOptions::default(),
        );
        if let Err(crate::Error::Failed(why)) = dry {
            report.held = Some(why);
            store.write(|tx| {
                tx.bump_source_stat(&source.name, "polls_held", 1)?;
                tx.set_source_state(
                    &source.name,
                    &json!({"cursor": store_cursor(tx, &source.name), "held": report.held}),
                )
            })?;
            return Ok(report);
        }
        dry?;
        if let Some(why) = approval {
            store.write(|tx| {
                tx.audit(crate::store::NewAuditEvent {
                    actor: ctx.actor,
                    action: "source.mass_change_approved",
                    subject: &source.name,
                    details: json!({"why": why, "people": people.len()}),
                })
            })?;
        }
    }
    let cause = format!("source:{}:poll", source.name);
    for (r, d, p, is_gone) in &changed {
        match ingest::apply_person(store, ctx, p, &cause, None) {
            Ok(a) => {
                store.write(|tx| {
                    tx.bump_source_stat(&source.name, &format!("changes:{}", a.change.as_str()), 1)
                })?;
                if *is_gone {
                    report.gone += 1;
                }
                report.applied.push(
                    json!({"record": r.id, "person": a.person, "change": a.change.as_str(), "operations": a.ops}),
                );
            }
            Err(Refused::Failed(e)) => return Err(e),
            Err(refused) => {
                report.refused.push(refused.to_json());
                continue;
            }
        }
        // The digest after the change is applied: a poll cut short here reads it again
        // and finds it unchanged. The person is kept with it, for a later deletion.
        store.write(|tx| tx.set_record(&source.name, &r.id, d, Some(&p.hris_id)))?;
    }
    report.cursor = page.cursor.clone();
    let cursor = page
        .cursor
        .clone()
        .or_else(|| stored_cursor(store, &source.name));
    store.write(|tx| {
        tx.bump_source_stat(&source.name, "polls", 1)?;
        if !report.refused.is_empty() {
            tx.bump_source_stat(&source.name, "failed", report.refused.len() as i64)?;
        }
        tx.set_source_state(
            &source.name,
            &json!({"cursor": cursor, "held": null, "error": null}),
        )
    })?;
    Ok(report)
}

/// The records the last polls mapped to a person that are missing from a complete
/// snapshot, as deletions (`{"id", "gone": true}`: the same digest every poll, so a leaver
/// is applied once).
fn gone_records(store: &Store, source: &str, page: &FeedPage) -> crate::Result<Vec<FeedRecord>> {
    let present: std::collections::HashSet<&str> =
        page.records.iter().map(|r| r.id.as_str()).collect();
    let mut out = Vec::new();
    for id in store.record_ids(source)? {
        if present.contains(id.as_str()) || store.record_person(source, &id)?.is_none() {
            continue;
        }
        out.push(FeedRecord {
            record: json!({"id": id, "gone": true}),
            id,
            deleted: true,
        });
    }
    Ok(out)
}

fn stored_cursor(store: &Store, source: &str) -> Option<String> {
    store
        .source_state(source)
        .ok()
        .flatten()
        .and_then(|s| s["cursor"].as_str().map(str::to_string))
}

fn store_cursor(tx: &crate::store::Tx<'_>, source: &str) -> Value {
    tx.conn()
        .query_row(
            "SELECT state FROM source_state WHERE source = ?1",
            [source],
            |r| r.get::<_, String>(0),
        )
        .ok()
        .and_then(|t| serde_json::from_str::<Value>(&t).ok())
        .map_or(Value::Null, |v| v["cursor"].clone())
}

/// One poll: read from `feed` since the stored cursor, and apply. Errors reading are
/// recorded in the source's state (and the cursor kept).
pub async fn poll_once(
    feed: &dyn Feed,
    store: &std::sync::Mutex<Store>,
    ctx: &Context<'_>,
    source: &Source,
    approval: Option<&str>,
) -> crate::Result<PollReport> {
    let cursor = {
        let st = store.lock().unwrap_or_else(|p| p.into_inner());
        stored_cursor(&st, &source.name)
    };
    let page = match feed.changes(cursor.as_deref()).await {
        Ok(p) => p,
        Err(e) => {
            let mut st = store.lock().unwrap_or_else(|p| p.into_inner());
            let text = e.to_string();
            st.write(|tx| {
                tx.bump_source_stat(&source.name, "poll_errors", 1)?;
                tx.set_source_state(
                    &source.name,
                    &json!({"cursor": cursor, "error": text, "at": chrono::Utc::now().to_rfc3339()}),
                )
            })?;
            return Err(crate::Error::Failed(format!(
                "polling {}: {text}",
                source.name
            )));
        }
    };
    // The store work is blocking (SQLite): off the async workers.
    tokio::task::block_in_place(|| {
        let mut st = store.lock().unwrap_or_else(|p| p.into_inner());
        apply_page(&mut st, ctx, source, &page, approval)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_follow_content_not_key_order() {
        let a: Value = serde_json::from_str(r#"{"b": 1, "a": "x"}"#).unwrap();
        let b: Value = serde_json::from_str(r#"{"a": "x", "b": 1}"#).unwrap();
        assert_eq!(digest(&a), digest(&b));
        assert_ne!(digest(&a), digest(&json!({"a": "y", "b": 1})));
    }
}
