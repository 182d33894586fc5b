//! What the console shows, read from the store by a loader that runs off the UI thread.
//!
//! The UI never touches the database or the network: it sends a [`Query`] saying what the
//! current page needs, and the loader answers with a [`Snapshot`]. Only what the page needs
//! is read (one person's matrix, one operation's attempts, one page of audit events); the
//! people list is read once and re-read only when the people table changes.

use crate::config::Catalog;
use crate::engine::status::LimiterSnapshot;
use crate::model::{EntitlementRef, OperationKind, OperationStatus, Person};
use crate::policy::PolicySet;
use crate::store::Store;
use crate::store::queue::OpRow;
use crate::{Error, Result};
use chrono::{DateTime, Duration as ChronoDuration, Utc};
use rusqlite::{OptionalExtension, params};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

mod reconcile;
mod sources;
pub use reconcile::{FINDINGS_LIMIT, ReconcileData, class_order, severity_order, sort_findings};
pub use sources::SourceRow;

/// Every status, in the order the console shows them.
pub const STATUSES: [OperationStatus; 10] = [
    OperationStatus::Running,
    OperationStatus::RetryWait,
    OperationStatus::Verifying,
    OperationStatus::Queued,
    OperationStatus::PendingApproval,
    OperationStatus::Blocked,
    OperationStatus::Failed,
    OperationStatus::Succeeded,
    OperationStatus::Cancelled,
    OperationStatus::Scheduled,
];

pub fn status_index(s: OperationStatus) -> usize {
    STATUSES.iter().position(|x| *x == s).unwrap_or(0)
}

/// Operation counts by status.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StatusCounts(pub [u64; 10]);

impl StatusCounts {
    pub fn get(&self, s: OperationStatus) -> u64 {
        self.0[status_index(s)]
    }
    pub fn add(&mut self, s: OperationStatus, n: u64) {
        self.0[status_index(s)] += n;
    }
    /// Work still to do: queued, waiting to retry, running and verifying.
    pub fn depth(&self) -> u64 {
        self.get(OperationStatus::Queued)
            + self.get(OperationStatus::RetryWait)
            + self.get(OperationStatus::Running)
            + self.get(OperationStatus::Verifying)
    }
}

/// Whether the console has seen the system accept its credential.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthState {
    /// The last call that reached the system was accepted.
    Ok,
    /// The last authentication failure, with the vendor's message.
    Failed(String),
    /// Nothing has been sent yet.
    Unknown,
}

/// One row of the Overview.
#[derive(Debug, Clone, PartialEq)]
pub struct SystemRow {
    pub name: String,
    pub kind: String,
    pub counts: StatusCounts,
    pub failed_last_hour: u64,
    /// Operations that succeeded in the last minute...
    pub succeeded_last_minute: u64,
    /// ...and the time they span: from the first of them to the snapshot (at most a minute).
    pub measured_over: Duration,
    pub last_sync: Option<String>,
    /// When the system was last read in full (reconciliation), if ever.
    pub last_observed: Option<String>,
    /// Open findings of that read.
    pub open_findings: u64,
    pub auth: AuthState,
    pub rate: Option<LimiterSnapshot>,
    /// Why the mass-change guard holds this system's changes, if it does.
    pub held: Option<String>,
    /// Requests per minute configured in systems.toml.
    pub budget_per_minute: Option<u32>,
}

/// When a system's queue will be done.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Eta {
    /// Nothing left to do.
    Done,
    /// Work is going on, but not for long enough to tell its pace.
    Measuring,
    In(Duration),
    /// Nothing is moving (all waiting to retry, say): no basis for a guess.
    Unknown,
}

/// Throughput is measured over at least this long...
pub const MIN_MEASURED: Duration = Duration::from_secs(5);
/// ...and at least this many completions, before an ETA is given.
pub const MIN_COMPLETIONS: u64 = 3;

impl SystemRow {
    /// Operations completed per second over the last minute, once there are enough of
    /// them over a long enough time ([`MIN_COMPLETIONS`], [`MIN_MEASURED`]) to say.
    pub fn measured_rate(&self) -> Option<f64> {
        let over = self.measured_over.min(Duration::from_secs(60));
        (self.succeeded_last_minute >= MIN_COMPLETIONS && over >= MIN_MEASURED)
            .then(|| self.succeeded_last_minute as f64 / over.as_secs_f64())
    }

    /// An honest estimate of when this system's queue is done: the queue depth over the
    /// throughput actually achieved (never more than the limiter allows). Until that has
    /// been measured for a few seconds, `Measuring` (a wave's first completions say
    /// nothing about its pace).
    pub fn eta(&self) -> Eta {
        let depth = self.counts.depth();
        if depth == 0 {
            return Eta::Done;
        }
        let Some(measured) = self.measured_rate() else {
            let moving = self.succeeded_last_minute > 0
                || self.counts.get(OperationStatus::Running) > 0
                || self.counts.get(OperationStatus::Verifying) > 0;
            return if moving { Eta::Measuring } else { Eta::Unknown };
        };
        let allowed = self
            .rate
            .as_ref()
            .map(|r| r.rate_per_sec)
            .filter(|r| r.is_finite() && *r > 0.0)
            .or_else(|| self.budget_per_minute.map(|b| b as f64 / 60.0));
        // Never promise more than the limiter will allow.
        let per_sec = allowed.map_or(measured, |a| measured.min(a.max(measured * 0.5)));
        if per_sec <= 0.0 {
            return Eta::Unknown;
        }
        Eta::In(Duration::from_secs_f64(depth as f64 / per_sec))
    }
}

/// One person in the list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PersonRow {
    pub id: String,
    pub name: String,
    pub email: String,
    pub department: String,
    pub title: String,
    pub status: String,
    /// The day their return as a rehire was applied (`people.rehired_at`, see
    /// `Tx::mark_rehired`): the console shows "rehire" beside their status.
    pub rehired: Option<String>,
}

/// The day of a stored `rehired_at` time.
fn rehire_day(at: Option<String>) -> Option<String> {
    at.map(|t| t.get(..10).unwrap_or(&t).to_string())
}

/// Everyone, sorted by name; shared with the UI without copying.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct PeopleIndex {
    pub rows: Vec<PersonRow>,
}

/// Failed operations that share a root cause.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailureGroup {
    pub key: String,
    pub system: String,
    pub class: String,
    pub code_or_message: String,
    pub message: String,
    pub op_ids: Vec<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApprovalRow {
    pub id: i64,
    pub op_id: Option<i64>,
    pub person_id: String,
    pub person_name: String,
    pub entitlement: String,
    pub rule: String,
    pub risk: String,
    pub requested_at: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRow {
    pub seq: i64,
    pub ts: String,
    pub actor: String,
    pub action: String,
    pub subject: String,
    pub details: String,
}

/// The state of one cell of the access matrix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum CellState {
    InSync,
    Missing,
    Excess,
    Queued,
    Running,
    Failed,
    AwaitingApproval,
    Blocked,
}

impl CellState {
    pub const ALL: [CellState; 8] = [
        CellState::InSync,
        CellState::Missing,
        CellState::Excess,
        CellState::Queued,
        CellState::Running,
        CellState::Failed,
        CellState::AwaitingApproval,
        CellState::Blocked,
    ];

    pub fn symbol(self) -> &'static str {
        match self {
            CellState::InSync => "✓",
            CellState::Missing => "+",
            CellState::Excess => "−",
            CellState::Queued => "…",
            CellState::Running => "▶",
            CellState::Failed => "✗",
            CellState::AwaitingApproval => "?",
            CellState::Blocked => "⊘",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            CellState::InSync => "in sync",
            CellState::Missing => "missing",
            CellState::Excess => "excess",
            CellState::Queued => "queued",
            CellState::Running => "running",
            CellState::Failed => "failed",
            CellState::AwaitingApproval => "awaiting approval",
            CellState::Blocked => "blocked",
        }
    }

    /// The state of an access the person should or does have, given the newest operation
    /// on it (if any).
    pub fn of(intended: bool, actual: bool, op: Option<OperationStatus>) -> Option<CellState> {
        use OperationStatus as S;
        match op {
            Some(S::Running | S::Verifying) => return Some(CellState::Running),
            Some(S::Queued | S::RetryWait | S::Scheduled) => return Some(CellState::Queued),
            Some(S::PendingApproval) => return Some(CellState::AwaitingApproval),
            Some(S::Blocked) => return Some(CellState::Blocked),
            Some(S::Failed) if intended != actual => return Some(CellState::Failed),
            _ => {}
        }
        match (intended, actual) {
            (true, true) => Some(CellState::InSync),
            (true, false) => Some(CellState::Missing),
            (false, true) => Some(CellState::Excess),
            (false, false) => None,
        }
    }
}

/// One person's access: rows are the account and each entitlement (`kind:name`), columns
/// are systems.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Matrix {
    pub person: PersonRow,
    pub systems: Vec<String>,
    /// When each system was last read in full (None: never observed).
    pub observed: Vec<Option<String>>,
    pub rows: Vec<MatrixRow>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MatrixRow {
    /// `account`, or `kind:name`.
    pub label: String,
    pub cells: Vec<Option<CellState>>,
    /// Per cell: the actual side is only accessdesk's record of an operation, not yet
    /// confirmed by reading the system.
    pub recorded: Vec<bool>,
}

impl Matrix {
    /// The entitlement reference (or None for the account row) behind a cell.
    pub fn entitlement_at(&self, row: usize, col: usize) -> Option<(String, Option<String>)> {
        let r = self.rows.get(row)?;
        let system = self.systems.get(col)?.clone();
        if r.label == "account" {
            Some((system, None))
        } else {
            let e = format!("{system}:{}", r.label);
            Some((system, Some(e)))
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttemptRow {
    pub attempt: u32,
    pub started_at: String,
    pub finished_at: Option<String>,
    pub outcome: Option<String>,
    pub error_class: Option<String>,
    pub http_status: Option<u16>,
    pub vendor_code: Option<String>,
    pub message: Option<String>,
    pub excerpt: Option<String>,
    pub request: Option<String>,
}

/// Everything about one operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpDetail {
    pub op: OpRow,
    pub request: String,
    pub attempts: Vec<AttemptRow>,
    pub depends_on: Vec<i64>,
}

/// Why a cell of the matrix is what it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CellExplain {
    pub person_id: String,
    pub system: String,
    pub entitlement: Option<String>,
    pub state: Option<CellState>,
    /// The policy's explanation, one line each.
    pub policy: Vec<String>,
    pub ops: Vec<OpDetail>,
}

/// A credential as the keychain reports it. Never the value.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CredentialInfo {
    pub reference: Option<String>,
    /// Some(true) present, Some(false) missing, None unknown (no keychain).
    pub present: Option<bool>,
    pub detail: Option<String>,
    pub set_at: Option<String>,
    pub last_auth_ok_at: Option<String>,
    /// Expiry, rotation, scopes and the vendor's deprecation signals (engine/hygiene.rs).
    pub hygiene: Option<crate::engine::hygiene::Hygiene>,
}

/// What the current page needs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Query {
    /// Read everyone for the People list (only while it is shown).
    pub people: bool,
    pub audit: Option<AuditQuery>,
    pub person: Option<String>,
    pub op: Option<i64>,
    pub cell: Option<(String, String, Option<String>)>,
    /// Re-read the credential state (slow on some keychains).
    pub credentials: bool,
    /// People whose names the page shows (the Queue's rows on screen): read with it, so
    /// that a long queue costs only its visible page.
    pub names: Vec<String>,
    /// The newest observation run and its findings (the Reconcile view).
    pub reconcile: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditQuery {
    pub filter: String,
    pub limit: usize,
}

/// Everything the console draws, as of `taken_at`.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    pub taken_at: Option<DateTime<Utc>>,
    /// Nothing in the database changed since the previous snapshot (same query): only
    /// the clock-driven parts (systems' throughput windows and limiters) are new.
    pub unchanged: bool,
    pub systems: Vec<SystemRow>,
    pub totals: StatusCounts,
    /// Sent only when it changed; the UI keeps the last one.
    pub people: Option<Arc<PeopleIndex>>,
    pub people_count: u64,
    pub queue: Arc<Vec<OpRow>>,
    /// Operations that changed since the previous snapshot.
    pub changed: Arc<HashSet<i64>>,
    pub groups: Vec<FailureGroup>,
    pub approvals: Vec<ApprovalRow>,
    pub audit: Option<Vec<AuditRow>>,
    pub audit_total: u64,
    pub matrix: Option<Matrix>,
    pub op: Option<OpDetail>,
    pub cell: Option<CellExplain>,
    pub credentials: BTreeMap<String, CredentialInfo>,
    /// Display names of the people `Query::names` asked for, by HRIS id.
    pub names: HashMap<String, String>,
    /// How long the read took (shown in the status bar; useful when the store is big).
    pub load_time: Duration,
    /// The newest observation run (only while the Reconcile view is open).
    pub reconcile: Option<ReconcileData>,
    /// The HR sources (sources.toml and what serve recorded of them).
    pub sources: Vec<SourceRow>,
}

/// Where the console gets live figures the store does not hold (the rate limiters).
pub trait LiveStatus: Send + Sync {
    fn rate(&self, system: &str) -> Option<LimiterSnapshot>;
}

/// Whether a credential is in the keychain, without reading it into the console.
pub trait CredentialProbe: Send + Sync {
    /// Ok(true) present, Ok(false) missing, Err(why) when it cannot be told.
    fn present(
        &self,
        reference: &crate::config::systems::CredentialRef,
    ) -> std::result::Result<bool, String>;
}

/// The live queue the Queue view shows: everything not yet done, at most this many.
pub const QUEUE_LIMIT: usize = 20_000;

/// At most this many names are read per snapshot ([`Query::names`]).
pub const MAX_NAMES: usize = 500;

/// A person's name as the console shows it, in SQL over `people`: the display name, else
/// the preferred (or given) name and the family name.
const NAME_SQL: &str = "coalesce(nullif(display_name, ''), coalesce(nullif(preferred_name, ''), given_name) || ' ' || family_name)";

/// Reads snapshots. Owns its own store connection.
pub struct Loader {
    store: Store,
    catalog: Arc<Catalog>,
    policies: Option<Arc<PolicySet>>,
    live: Option<Arc<dyn LiveStatus>>,
    probe: Option<Arc<dyn CredentialProbe>>,
    people_stamp: Option<(i64, String)>,
    people: Arc<PeopleIndex>,
    last_updates: HashMap<i64, String>,
    credentials: BTreeMap<String, CredentialInfo>,
    /// The last full read: the database's `data_version` then, the query, the snapshot.
    last: Option<(i64, Query, Snapshot)>,
}

impl Loader {
    pub fn new(
        store: Store,
        catalog: Arc<Catalog>,
        policies: Option<Arc<PolicySet>>,
        live: Option<Arc<dyn LiveStatus>>,
        probe: Option<Arc<dyn CredentialProbe>>,
    ) -> Loader {
        // Best effort: a smaller footprint on big databases.
        let _ = store.tune_for_small_reads();
        Loader {
            store,
            catalog,
            policies,
            live,
            probe,
            people_stamp: None,
            people: Arc::new(PeopleIndex::default()),
            last_updates: HashMap::new(),
            credentials: BTreeMap::new(),
            last: None,
        }
    }

    /// Read what `q` asks for, as of `now`.
    ///
    /// Only what changed is read again. SQLite's `data_version` tells whether anyone
    /// committed since the last read; when nobody did and the page asks for the same
    /// things, the last snapshot is reused and only what moves with the clock is read
    /// again (the last minute's throughput, the last hour's failures, the limiters), so
    /// an idle console costs next to nothing however long the queue is.
    pub fn load(&mut self, q: &Query, now: DateTime<Utc>) -> Result<Snapshot> {
        let started = std::time::Instant::now();
        let version: i64 = self
            .store
            .conn()
            .query_row("PRAGMA data_version", [], |r| r.get(0))?;
        if !q.credentials
            && let Some((v, lq, last)) = &self.last
            && *v == version
            && lq == q
        {
            let mut snap = last.clone();
            snap.taken_at = Some(now);
            snap.unchanged = true;
            snap.people = None;
            snap.changed = Arc::new(HashSet::new());
            let (failed_hour, done_minute) = windows(self.store.conn(), now)?;
            for row in &mut snap.systems {
                row.failed_last_hour = failed_hour.get(&row.name).copied().unwrap_or(0);
                row.succeeded_last_minute = done_minute.get(&row.name).map_or(0, |d| d.0);
                row.measured_over = done_minute.get(&row.name).map_or(Duration::ZERO, |d| d.1);
                row.rate = self.live.as_ref().and_then(|l| l.rate(&row.name));
            }
            snap.load_time = started.elapsed();
            return Ok(snap);
        }
        let snap = self.load_all(q, now, started)?;
        let mut kept = snap.clone();
        kept.people = None;
        self.last = Some((version, q.clone(), kept));
        Ok(snap)
    }

    fn load_all(
        &mut self,
        q: &Query,
        now: DateTime<Utc>,
        started: std::time::Instant,
    ) -> Result<Snapshot> {
        let mut snap = Snapshot {
            taken_at: Some(now),
            ..Default::default()
        };
        if q.people {
            snap.people = self.refresh_people()?;
        }
        snap.people_count = self
            .store
            .conn()
            .query_row("SELECT count(*) FROM people", [], |r| r.get::<_, i64>(0))?
            .max(0) as u64;
        self.overview(&mut snap, now)?;
        snap.sources = self.sources(now)?;
        self.queue(&mut snap)?;
        snap.approvals = self.approvals()?;
        if let Some(aq) = &q.audit {
            let (rows, total) = self.audit(aq)?;
            snap.audit = Some(rows);
            snap.audit_total = total;
        }
        if let Some(p) = &q.person {
            snap.matrix = self.matrix(p)?;
        }
        if let Some(id) = q.op {
            snap.op = self.op_detail(id)?;
        }
        if let Some((p, sys, ent)) = &q.cell {
            snap.cell = Some(self.cell(p, sys, ent.as_deref(), snap.matrix.as_ref())?);
        }
        if !q.names.is_empty() {
            snap.names = self.names(&q.names)?;
        }
        if q.reconcile {
            snap.reconcile = Some(self.reconcile()?);
        }
        if q.credentials || self.credentials.is_empty() {
            self.credentials = self.credentials()?;
        }
        snap.credentials = self.credentials.clone();
        snap.load_time = started.elapsed();
        Ok(snap)
    }

    /// Re-read everyone when the people table changed; None when it did not.
    fn refresh_people(&mut self) -> Result<Option<Arc<PeopleIndex>>> {
        let stamp: (i64, String) = self.store.conn().query_row(
            "SELECT count(*), coalesce(max(updated_at), '') FROM people",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        if self.people_stamp.as_ref() == Some(&stamp) {
            return Ok(None);
        }
        let mut stmt = self.store.conn().prepare(
            "SELECT hris_id, given_name, family_name, preferred_name, display_name, email, department, title, status, rehired_at FROM people",
        )?;
        let mut rows = stmt
            .query_map([], |r| {
                let given: String = r.get(1)?;
                let family: String = r.get(2)?;
                let preferred: Option<String> = r.get(3)?;
                let display: Option<String> = r.get(4)?;
                let name = display.filter(|d| !d.is_empty()).unwrap_or_else(|| {
                    format!(
                        "{} {}",
                        preferred.filter(|p| !p.is_empty()).unwrap_or(given),
                        family
                    )
                });
                Ok(PersonRow {
                    id: r.get(0)?,
                    name,
                    email: r.get(5)?,
                    department: r.get(6)?,
                    title: r.get(7)?,
                    status: r.get(8)?,
                    rehired: rehire_day(r.get(9)?),
                })
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        rows.sort_by(|a, b| a.name.cmp(&b.name).then_with(|| a.id.cmp(&b.id)));
        self.people = Arc::new(PeopleIndex { rows });
        self.people_stamp = Some(stamp);
        Ok(Some(self.people.clone()))
    }

    /// A person's name as the console shows it (display name, else preferred or given name
    /// and family name).
    fn display_name(&self, id: &str) -> String {
        self.store
            .conn()
            .query_row(
                &format!("SELECT {NAME_SQL} FROM people WHERE hris_id = ?1"),
                [id],
                |r| r.get(0),
            )
            .unwrap_or_default()
    }

    /// The names of these people (at most [`MAX_NAMES`]), in one read.
    fn names(&self, ids: &[String]) -> Result<HashMap<String, String>> {
        let ids = &ids[..ids.len().min(MAX_NAMES)];
        let marks = vec!["?"; ids.len()].join(",");
        let mut stmt = self.store.conn().prepare(&format!(
            "SELECT hris_id, {NAME_SQL} FROM people WHERE hris_id IN ({marks})"
        ))?;
        let rows = stmt.query_map(rusqlite::params_from_iter(ids), |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    fn overview(&mut self, snap: &mut Snapshot, now: DateTime<Utc>) -> Result<()> {
        let conn = self.store.conn();
        let mut per: BTreeMap<String, StatusCounts> = BTreeMap::new();
        for (system, status, n) in self.store.queue_counts()? {
            if let Some(s) = crate::store::queue::status_from_str(&status) {
                per.entry(system).or_default().add(s, n as u64);
                snap.totals.add(s, n.max(0) as u64);
            }
        }
        let (failed_hour, done_minute) = windows(conn, now)?;
        let held = held_reasons(conn)?;
        let mut rows = Vec::new();
        for (name, entry) in &self.catalog.systems {
            let last_sync: Option<String> = conn
                .query_row(
                    "SELECT max(observed_at) FROM accounts WHERE system = ?1",
                    [name],
                    |r| r.get(0),
                )
                .optional()?
                .flatten();
            let (last_observed, open_findings) = observed_state(conn, name)?;
            rows.push(SystemRow {
                last_observed,
                open_findings,
                name: name.clone(),
                kind: entry.system.kind.to_string(),
                counts: per.get(name).copied().unwrap_or_default(),
                failed_last_hour: failed_hour.get(name).copied().unwrap_or(0),
                succeeded_last_minute: done_minute.get(name).map_or(0, |d| d.0),
                measured_over: done_minute.get(name).map_or(Duration::ZERO, |d| d.1),
                last_sync,
                auth: auth_state(conn, name)?,
                rate: self.live.as_ref().and_then(|l| l.rate(name)),
                held: held.get(name).cloned(),
                budget_per_minute: entry.rate_limit.map(|r| r.requests_per_minute),
            });
        }
        snap.systems = rows;
        Ok(())
    }

    fn queue(&mut self, snap: &mut Snapshot) -> Result<()> {
        use OperationStatus::*;
        let mut ops = self.store.ops_with_status(
            &[
                Running,
                RetryWait,
                Verifying,
                Queued,
                Scheduled,
                PendingApproval,
                Blocked,
                Failed,
            ],
            QUEUE_LIMIT,
        )?;
        ops.sort_by(|a, b| {
            status_index(a.status)
                .cmp(&status_index(b.status))
                .then(a.priority.cmp(&b.priority))
                .then(a.id.cmp(&b.id))
        });
        let mut changed = HashSet::new();
        let mut seen = HashMap::with_capacity(ops.len());
        for op in &ops {
            if self.last_updates.get(&op.id) != Some(&op.updated_at)
                && !self.last_updates.is_empty()
            {
                changed.insert(op.id);
            }
            seen.insert(op.id, op.updated_at.clone());
        }
        self.last_updates = seen;
        let mut groups: BTreeMap<crate::engine::admin::RootCause, FailureGroup> = BTreeMap::new();
        for op in ops.iter().filter(|o| o.status == Failed) {
            if let Some(rc) = crate::engine::admin::RootCause::of(op) {
                let g = groups.entry(rc.clone()).or_insert_with(|| FailureGroup {
                    key: rc.key(),
                    system: rc.system.clone(),
                    class: rc.class.clone(),
                    code_or_message: rc.code_or_message.clone(),
                    message: op.last_error_message.clone().unwrap_or_default(),
                    op_ids: Vec::new(),
                });
                g.op_ids.push(op.id);
            }
        }
        let mut groups: Vec<FailureGroup> = groups.into_values().collect();
        groups.sort_by(|a, b| b.op_ids.len().cmp(&a.op_ids.len()).then(a.key.cmp(&b.key)));
        snap.groups = groups;
        snap.queue = Arc::new(ops);
        snap.changed = Arc::new(changed);
        Ok(())
    }

    fn approvals(&self) -> Result<Vec<ApprovalRow>> {
        let pending = crate::engine::admin::pending_approvals(&self.store)?;
        Ok(pending
            .into_iter()
            .map(|p| {
                let risk = p
                    .entitlement
                    .parse::<EntitlementRef>()
                    .ok()
                    .and_then(|e| {
                        self.catalog
                            .entitlement(&e.system, e.kind, &e.name)
                            .map(|c| c.risk.as_str().to_string())
                    })
                    .unwrap_or_else(|| "unknown".into());
                ApprovalRow {
                    id: p.id,
                    op_id: p.op_id,
                    person_name: self.display_name(&p.person_id),
                    person_id: p.person_id,
                    entitlement: p.entitlement,
                    rule: p.rule,
                    risk,
                    requested_at: p.requested_at,
                }
            })
            .collect())
    }

    fn audit(&self, q: &AuditQuery) -> Result<(Vec<AuditRow>, u64)> {
        let total = self.store.audit_count()? as u64;
        let like = format!("%{}%", q.filter.replace('%', "\\%").replace('_', "\\_"));
        let mut stmt = self.store.conn().prepare_cached(
            "SELECT seq, ts, actor, action, subject, details FROM audit_events
             WHERE ?1 = '%%' OR actor LIKE ?1 ESCAPE '\\' OR action LIKE ?1 ESCAPE '\\'
                OR subject LIKE ?1 ESCAPE '\\' OR details LIKE ?1 ESCAPE '\\'
             ORDER BY seq DESC LIMIT ?2",
        )?;
        let rows = stmt
            .query_map(params![like, q.limit.max(1) as i64], |r| {
                Ok(AuditRow {
                    seq: r.get(0)?,
                    ts: r.get(1)?,
                    actor: r.get(2)?,
                    action: r.get(3)?,
                    subject: r.get(4)?,
                    details: r.get(5)?,
                })
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok((rows, total))
    }

    fn person_row(&self, key: &str) -> Result<Option<(Person, PersonRow)>> {
        let Some(p) = self.store.find_person(key)? else {
            return Ok(None);
        };
        let row = PersonRow {
            id: p.hris_id.clone(),
            name: self.display_name(&p.hris_id),
            email: p.email.clone(),
            department: p.department.clone(),
            title: p.title.clone(),
            status: p.status.to_string(),
            rehired: rehire_day(self.store.rehired_at(&p.hris_id)?),
        };
        Ok(Some((p, row)))
    }

    fn matrix(&self, key: &str) -> Result<Option<Matrix>> {
        let Some((p, row)) = self.person_row(key)? else {
            return Ok(None);
        };
        let id = &p.hris_id;
        let intended: HashSet<String> = self
            .store
            .intended_for(id)?
            .into_iter()
            .map(|g| g.entitlement.to_string())
            .collect();
        let systems: Vec<String> = self.catalog.systems.keys().cloned().collect();
        // When each system was last read in full: what is newer than that (or anything,
        // where it never was) is only our record.
        let mut last_read: HashMap<String, String> = HashMap::new();
        for s in &systems {
            if let (Some(at), _) = observed_state(self.store.conn(), s)? {
                last_read.insert(s.clone(), at);
            }
        }
        let only_recorded = |system: &str, source: &str, at: &str| -> bool {
            source == "recorded" && last_read.get(system).is_none_or(|read| at > read.as_str())
        };
        let mut recorded: HashSet<(String, Option<String>)> = HashSet::new();
        let mut observed: HashSet<String> = HashSet::new();
        for (e, source, at) in self.store.actual_for(id)? {
            let sys = e.split(':').next().unwrap_or("").to_string();
            if only_recorded(&sys, &source, &at) {
                recorded.insert((sys, Some(e.clone())));
            }
            observed.insert(e);
        }
        let mut accounts: HashMap<String, bool> = HashMap::new();
        {
            let mut stmt = self.store.conn().prepare_cached(
                "SELECT system, active, source, COALESCE(observed_at, '') FROM accounts WHERE person_id = ?1",
            )?;
            let rows = stmt.query_map([id], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, bool>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                ))
            })?;
            for r in rows {
                let (s, a, source, at) = r?;
                if only_recorded(&s, &source, &at) {
                    recorded.insert((s.clone(), None));
                }
                accounts.insert(s, a);
            }
        }
        let ops = self.store.ops_for_person(id, 500)?;
        // The newest operation on each (system, entitlement).
        let mut newest: HashMap<(String, Option<String>), OperationStatus> = HashMap::new();
        for o in &ops {
            newest
                .entry((o.system.clone(), o.entitlement.clone()))
                .or_insert(o.status);
        }
        let mut labels: Vec<String> = intended
            .iter()
            .chain(observed.iter())
            .chain(ops.iter().filter_map(|o| o.entitlement.as_ref()))
            .filter_map(|e| e.split_once(':').map(|(_, rest)| rest.to_string()))
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        labels.insert(0, "account".into());
        let wants_account: HashSet<&str> = intended
            .iter()
            .filter_map(|e| e.split_once(':').map(|(s, _)| s))
            .collect();
        let active = p.status != crate::model::EmploymentStatus::Terminated;
        let rows = labels
            .into_iter()
            .map(|label| {
                let cells = systems
                    .iter()
                    .map(|sys| {
                        if label == "account" {
                            let intended = active && wants_account.contains(sys.as_str());
                            let actual = accounts.get(sys).copied().unwrap_or(false);
                            let op = newest.get(&(sys.clone(), None)).copied();
                            CellState::of(intended, actual, op)
                        } else {
                            let e = format!("{sys}:{label}");
                            let op = newest.get(&(sys.clone(), Some(e.clone()))).copied();
                            CellState::of(intended.contains(&e), observed.contains(&e), op)
                        }
                    })
                    .collect();
                let recorded = systems
                    .iter()
                    .map(|sys| {
                        let key = if label == "account" {
                            (sys.clone(), None)
                        } else {
                            (sys.clone(), Some(format!("{sys}:{label}")))
                        };
                        recorded.contains(&key)
                    })
                    .collect();
                MatrixRow {
                    label,
                    cells,
                    recorded,
                }
            })
            .collect();
        let observed = systems.iter().map(|s| last_read.get(s).cloned()).collect();
        Ok(Some(Matrix {
            person: row,
            systems,
            observed,
            rows,
        }))
    }

    fn op_detail(&self, id: i64) -> Result<Option<OpDetail>> {
        let Some(op) = self.store.op(id)? else {
            return Ok(None);
        };
        let attempts = attempts(&self.store, id)?;
        let depends_on = self.store.dependencies_of(id)?;
        let request = describe_request(&self.catalog, &op);
        Ok(Some(OpDetail {
            op,
            request,
            attempts,
            depends_on,
        }))
    }

    /// `matrix`: this person's matrix if it was read for the same snapshot.
    fn cell(
        &self,
        person: &str,
        system: &str,
        entitlement: Option<&str>,
        matrix: Option<&Matrix>,
    ) -> Result<CellExplain> {
        let mut policy = Vec::new();
        let mut state = None;
        if let Some((p, _)) = self.person_row(person)? {
            let fresh;
            let m = match matrix.filter(|m| m.person.id == p.hris_id) {
                Some(m) => Some(m),
                None => {
                    fresh = self.matrix(&p.hris_id)?;
                    fresh.as_ref()
                }
            };
            if let Some(m) = m {
                let label = entitlement
                    .and_then(|e| e.split_once(':').map(|(_, r)| r.to_string()))
                    .unwrap_or_else(|| "account".into());
                let col = m.systems.iter().position(|s| s == system);
                state = m
                    .rows
                    .iter()
                    .find(|r| r.label == label)
                    .and_then(|r| col.and_then(|c| r.cells.get(c).copied().flatten()));
            }
            policy = explain_lines(
                self.policies.as_deref(),
                &self.store,
                &p,
                system,
                entitlement,
            )?;
        }
        let ops = self
            .store
            .ops_for_person(person, 500)?
            .into_iter()
            .filter(|o| o.system == system && o.entitlement.as_deref() == entitlement)
            .take(10)
            .map(|o| {
                let attempts = attempts(&self.store, o.id)?;
                let depends_on = self.store.dependencies_of(o.id)?;
                Ok(OpDetail {
                    request: describe_request(&self.catalog, &o),
                    op: o,
                    attempts,
                    depends_on,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(CellExplain {
            person_id: person.to_string(),
            system: system.to_string(),
            entitlement: entitlement.map(str::to_string),
            state,
            policy,
            ops,
        })
    }

    fn credentials(&self) -> Result<BTreeMap<String, CredentialInfo>> {
        let mut out = BTreeMap::new();
        let mut health: BTreeMap<String, crate::engine::hygiene::Hygiene> =
            crate::engine::hygiene::hygiene(&self.store, &self.catalog, chrono::Utc::now())?
                .into_iter()
                .map(|h| (h.system.clone(), h))
                .collect();
        for (name, entry) in &self.catalog.systems {
            let mut info = CredentialInfo {
                hygiene: health.remove(name),
                ..Default::default()
            };
            if let Some(cred) = &entry.credential {
                info.reference = Some(cred.to_string());
                if let Some(probe) = &self.probe {
                    match probe.present(cred) {
                        Ok(p) => info.present = Some(p),
                        Err(why) => info.detail = Some(why),
                    }
                }
                if let crate::config::systems::CredentialRef::Keyring(k) = cred {
                    let row: Option<(String, Option<String>)> = self
                        .store
                        .conn()
                        .query_row(
                            "SELECT set_at, last_auth_ok_at FROM secrets_index WHERE name = ?1",
                            [k],
                            |r| Ok((r.get(0)?, r.get(1)?)),
                        )
                        .optional()?;
                    if let Some((set, ok)) = row {
                        info.set_at = Some(set);
                        info.last_auth_ok_at = ok;
                    }
                }
            }
            if info.last_auth_ok_at.is_none() {
                info.last_auth_ok_at = self
                    .store
                    .conn()
                    .query_row(
                        "SELECT max(a.finished_at) FROM op_attempts a JOIN operations o ON o.id = a.op_id
                         WHERE o.system = ?1 AND a.outcome = 'ok'",
                        [name],
                        |r| r.get(0),
                    )
                    .optional()?
                    .flatten();
            }
            out.insert(name.clone(), info);
        }
        Ok(out)
    }
}

fn grouped(conn: &rusqlite::Connection, sql: &str, arg: &str) -> Result<HashMap<String, u64>> {
    let mut stmt = conn.prepare_cached(sql)?;
    let rows = stmt.query_map([arg], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?;
    let mut out = HashMap::new();
    for r in rows {
        let (k, v) = r?;
        out.insert(k, v.max(0) as u64);
    }
    Ok(out)
}

/// The newest held plan's reasons, by the system each names ("okta: the plan would ...").
/// Per system: failures in the last hour, and successes in the last minute with the time
/// they span (the console's throughput and ETA). Both read only the recent rows (index
/// `operations_recent`).
#[allow(clippy::type_complexity)]
fn windows(
    conn: &rusqlite::Connection,
    now: DateTime<Utc>,
) -> Result<(HashMap<String, u64>, HashMap<String, (u64, Duration)>)> {
    let hour_ago = crate::store::queue::ts(now - ChronoDuration::hours(1));
    let minute_ago = crate::store::queue::ts(now - ChronoDuration::minutes(1));
    let failed_hour = grouped(
        conn,
        "SELECT system, count(*) FROM operations WHERE status = 'failed' AND updated_at >= ?1 GROUP BY system",
        &hour_ago,
    )?;
    let mut done_minute: HashMap<String, (u64, Duration)> = HashMap::new();
    let mut stmt = conn.prepare_cached(
        "SELECT system, count(*), min(updated_at) FROM operations WHERE status = 'succeeded' AND updated_at >= ?1 GROUP BY system",
    )?;
    let rows = stmt.query_map([&minute_ago], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, i64>(1)?,
            r.get::<_, Option<String>>(2)?,
        ))
    })?;
    for row in rows {
        let (system, n, first) = row?;
        let over = first
            .and_then(|t| DateTime::parse_from_rfc3339(&t).ok())
            .and_then(|t| (now - t.with_timezone(&Utc)).to_std().ok())
            .unwrap_or_default();
        done_minute.insert(system, (n.max(0) as u64, over));
    }
    Ok((failed_hour, done_minute))
}

/// When `system` was last read in full, and how many findings of that read are open.
fn observed_state(conn: &rusqlite::Connection, system: &str) -> Result<(Option<String>, u64)> {
    let last: Option<(i64, Option<String>)> = conn
        .query_row(
            "SELECT run_id, observed_at FROM observe_systems WHERE system = ?1 AND status = 'complete'
             ORDER BY run_id DESC LIMIT 1",
            [system],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    let Some((run, at)) = last else {
        return Ok((None, 0));
    };
    let open: i64 = conn.query_row(
        "SELECT count(*) FROM findings WHERE run_id = ?1 AND system = ?2 AND status = 'open'",
        rusqlite::params![run, system],
        |r| r.get(0),
    )?;
    Ok((at, open.max(0) as u64))
}

fn held_reasons(conn: &rusqlite::Connection) -> Result<HashMap<String, String>> {
    let row: Option<Option<String>> = conn
        .query_row(
            "SELECT held_reason FROM plans WHERE status = 'held'
               AND created_at >= coalesce((SELECT max(created_at) FROM plans WHERE status = 'applied'), '')
             ORDER BY created_at DESC LIMIT 1",
            [],
            |r| r.get(0),
        )
        .optional()?;
    let mut out: HashMap<String, String> = HashMap::new();
    for reason in row.flatten().iter().flat_map(|r| r.lines()) {
        if let Some((system, _)) = reason.split_once(": ") {
            out.entry(system.trim().to_string())
                .and_modify(|r| {
                    r.push_str("; ");
                    r.push_str(reason);
                })
                .or_insert_with(|| reason.to_string());
        }
    }
    Ok(out)
}

/// The newest attempt that reached the system decides: accepted, or refused as unauthorized.
fn auth_state(conn: &rusqlite::Connection, system: &str) -> Result<AuthState> {
    let row: Option<(Option<String>, Option<String>, Option<String>)> = conn
        .query_row(
            "SELECT a.outcome, a.error_class, a.message FROM op_attempts a JOIN operations o ON o.id = a.op_id
             WHERE o.system = ?1 AND a.finished_at IS NOT NULL
               AND (a.outcome = 'ok' OR a.error_class IN ('unauthorized', 'Unauthorized'))
             ORDER BY a.finished_at DESC LIMIT 1",
            [system],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .optional()?;
    Ok(match row {
        None => AuthState::Unknown,
        Some((Some(o), _, _)) if o == "ok" => AuthState::Ok,
        Some((_, _, msg)) => AuthState::Failed(msg.unwrap_or_else(|| "unauthorized".into())),
    })
}

fn attempts(store: &Store, op: i64) -> Result<Vec<AttemptRow>> {
    let mut stmt = store.conn().prepare_cached(
        "SELECT attempt, started_at, finished_at, outcome, error_class, http_status, vendor_code, message, excerpt, request
         FROM op_attempts WHERE op_id = ?1 ORDER BY attempt",
    )?;
    let rows = stmt.query_map([op], |r| {
        Ok(AttemptRow {
            attempt: r.get(0)?,
            started_at: r.get(1)?,
            finished_at: r.get(2)?,
            outcome: r.get(3)?,
            error_class: r.get(4)?,
            http_status: r.get(5)?,
            vendor_code: r.get(6)?,
            message: r.get(7)?,
            excerpt: r.get(8)?,
            request: r.get(9)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
}

/// What the operation asks of the system, in words (the wire request is in each attempt).
fn describe_request(catalog: &Catalog, op: &OpRow) -> String {
    let target = catalog
        .systems
        .get(&op.system)
        .and_then(|s| s.base_url.clone())
        .map(|u| crate::redact::redact_url(&u))
        .unwrap_or_else(|| op.system.clone());
    let what = match op.kind {
        OperationKind::CreateAccount => "create the account".to_string(),
        OperationKind::UpdateAttributes => "update the account's attributes".to_string(),
        OperationKind::Deactivate => "deactivate the account".to_string(),
        OperationKind::Reactivate => "reactivate the account".to_string(),
        OperationKind::DeactivateOrphan => {
            return format!(
                "deactivate the orphan account {} (no person owns it) at {target}",
                op.person_id
            );
        }
        OperationKind::AddMembership => format!(
            "add to {}",
            op.entitlement.as_deref().unwrap_or("(no entitlement)")
        ),
        OperationKind::RemoveMembership => format!(
            "remove from {}",
            op.entitlement.as_deref().unwrap_or("(no entitlement)")
        ),
    };
    format!("{what} of {} at {target}", op.person_id)
}

fn explain_lines(
    policies: Option<&PolicySet>,
    store: &Store,
    p: &Person,
    system: &str,
    entitlement: Option<&str>,
) -> Result<Vec<String>> {
    let stored = store.intended_for(&p.hris_id)?;
    let mut out = Vec::new();
    let wanted: Vec<&crate::store::grants::IntendedRow> = stored
        .iter()
        .filter(|g| match entitlement {
            Some(e) => &*g.entitlement == e,
            None => g.entitlement.starts_with(&format!("{system}:")),
        })
        .collect();
    if entitlement.is_none() {
        if p.status == crate::model::EmploymentStatus::Terminated {
            out.push(format!(
                "{} is {}: no account is intended anywhere.",
                p.hris_id, p.status
            ));
        } else if wanted.is_empty() {
            out.push(format!(
                "No rule grants {} anything in {system}, so no account is intended.",
                p.hris_id
            ));
        } else {
            out.push(format!(
                "An account is intended because {} entitlement(s) in {system} are granted:",
                wanted.len()
            ));
        }
    }
    for g in &wanted {
        out.push(format!(
            "Granted {} by rule {:?}{}{}",
            g.entitlement,
            g.rule,
            if g.requires_approval {
                " (requires approval)"
            } else {
                ""
            },
            g.expires_at
                .as_deref()
                .map(|e| format!(", expires {e}"))
                .unwrap_or_default()
        ));
    }
    if let (Some(ps), Some(e)) = (policies, entitlement) {
        let ex = ps.explain(p);
        match ex.entitlements.iter().find(|g| g.entitlement == e) {
            Some(g) => {
                out.push(format!("  when {}", g.condition));
                for b in &g.because {
                    out.push(format!("  because {b}"));
                }
                for r in &g.also_granted_by {
                    out.push(format!("  also granted by {r}"));
                }
            }
            None => {
                out.push(format!("No rule grants {e} to {}.", p.hris_id));
                let rules: Vec<_> = ex
                    .unmatched
                    .iter()
                    .filter(|u| ps_rule_grants(ps, &u.rule, e))
                    .collect();
                for u in rules {
                    out.push(format!(
                        "  rule {:?} did not match: {}",
                        u.rule, u.condition
                    ));
                    for f in &u.failed {
                        let vals: Vec<String> = f.values.iter().map(|v| v.to_string()).collect();
                        out.push(format!("    false: {} ({})", f.test, vals.join(", ")));
                    }
                }
            }
        }
    } else if policies.is_none() && entitlement.is_some() && wanted.is_empty() {
        out.push("Not intended by the stored grants (policies not loaded here).".into());
    }
    Ok(out)
}

fn ps_rule_grants(ps: &PolicySet, rule: &str, entitlement: &str) -> bool {
    ps.rules()
        .iter()
        .any(|r| r.name == rule && r.grants.iter().any(|g| g.to_string() == entitlement))
}

/// Run a load, turning errors into text for the status bar.
pub fn describe(e: &Error) -> String {
    match e.hint() {
        Some(h) => format!("{e} (hint: {h})"),
        None => e.to_string(),
    }
}
