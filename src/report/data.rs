//! What the evidence report states, read from the store and the home: the run and its
//! reads, the policy version, the audit chain's head, each system's integration pattern,
//! intended against actual access per person, the findings with their dispositions and
//! the operations that remediated them with the vendors' answers.

use crate::config::Home;
use crate::model::Person;
use crate::store::Store;
use crate::store::reconcile::{Checkpoint, FindingFilter, FindingRow, RunRow};
use crate::{Error, Result};
use chrono::{DateTime, Utc};
use rusqlite::{OptionalExtension, params};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// How every system is read today. Stated as it is: there is no schedule.
pub const PATTERN: &str =
    "pull: full read of accounts and memberships through the vendor API, on demand";
/// What starts a read.
pub const TRIGGER: &str = "none (no schedule): a read runs when someone runs `accessdesk reconcile` or `accessdesk observe`";
/// What the policy version covers.
pub const POLICY_VERSION_COVERS: &str = "SHA-256 over the bytes of policies.toml followed by the bytes of systems.toml, as they are in the home when the report is written";

/// Everything a report states.
#[derive(Debug, Clone)]
pub struct Evidence {
    pub generated_at: String,
    pub generated_by: String,
    pub run: RunRow,
    /// The run's read of each system.
    pub reads: Vec<Checkpoint>,
    pub policy_sha256: String,
    pub audit_head: AuditHead,
    pub systems: Vec<SystemInfo>,
    pub access: Vec<AccessRow>,
    pub findings: Vec<FindingRow>,
    /// Operations queued by each finding: finding id → operation ids.
    pub finding_ops: BTreeMap<i64, Vec<i64>>,
    pub operations: Vec<OpEvidence>,
}

/// The audit chain's head when the report was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditHead {
    /// `meta.audit_head`: (seq, hash); None when nothing was ever audited.
    pub recorded: Option<(i64, String)>,
    /// The newest `audit_events` row: (seq, hash).
    pub last_event: Option<(i64, String)>,
}

/// One system of the run: its integration pattern and how late a change is seen.
#[derive(Debug, Clone, PartialEq)]
pub struct SystemInfo {
    pub name: String,
    /// From the mirrored catalogue; None when the system is no longer configured.
    pub kind: Option<String>,
    pub api_version: Option<String>,
    /// The status of this run's read of it.
    pub read_status: String,
    /// The newest complete read up to and including this run.
    pub last_full_read: Option<LastRead>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct LastRead {
    pub run: i64,
    pub started_at: String,
    pub completed_at: String,
    /// None when a time does not parse.
    pub seconds: Option<f64>,
}

impl SystemInfo {
    /// The expected delay before a change made in the system is observed.
    pub fn expected_delay(&self) -> String {
        match &self.last_full_read {
            Some(r) => format!(
                "until the next observation; the last full read of this system took {} s and completed at {}",
                r.seconds
                    .map(seconds)
                    .unwrap_or_else(|| "an unknown number of".into()),
                r.completed_at
            ),
            None => {
                "until the next observation; no full read of this system has completed yet".into()
            }
        }
    }
}

/// `0.013`, `4.2`, `380`: enough digits to say something at every scale.
fn seconds(s: f64) -> String {
    if s < 1.0 {
        format!("{s:.3}")
    } else if s < 100.0 {
        format!("{s:.1}")
    } else {
        format!("{s:.0}")
    }
}

/// Intended against actual access of one person (or of one account nobody owns) in one
/// system.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessRow {
    pub system: String,
    pub person: Option<String>,
    pub name: Option<String>,
    pub hr_status: Option<String>,
    /// `login` or `login (inactive)`.
    pub accounts: Vec<String>,
    /// How each account was tied to the person: `accounts table` or `finding #N`.
    pub linked_by: Vec<String>,
    pub intended: Vec<String>,
    pub actual: Vec<String>,
    pub status: &'static str,
    pub note: String,
}

impl AccessRow {
    pub fn not_observed(&self) -> Vec<String> {
        let actual: BTreeSet<&String> = self.actual.iter().collect();
        self.intended
            .iter()
            .filter(|e| !actual.contains(e))
            .cloned()
            .collect()
    }

    pub fn not_intended(&self) -> Vec<String> {
        let intended: BTreeSet<&String> = self.intended.iter().collect();
        self.actual
            .iter()
            .filter(|e| !intended.contains(e))
            .cloned()
            .collect()
    }
}

pub const MATCHES: &str = "matches";
pub const DIFFERS: &str = "differs";
pub const NOT_READ: &str = "not read in full";

/// One attempt (or none yet) of an operation a finding queued.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OpEvidence {
    pub finding: i64,
    pub op: i64,
    /// None when the operation is no longer in the queue.
    pub kind: Option<String>,
    pub system: Option<String>,
    pub person: Option<String>,
    pub entitlement: Option<String>,
    pub status: Option<String>,
    pub created_at: Option<String>,
    pub updated_at: Option<String>,
    pub attempt: Option<i64>,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    pub outcome: Option<String>,
    pub http_status: Option<i64>,
    pub vendor_code: Option<String>,
    pub error_class: Option<String>,
    pub message: Option<String>,
    pub request: Option<String>,
}

/// Read everything the report of `run` (default: the newest) states.
pub fn gather(store: &Store, home: &Home, run: Option<i64>, actor: &str) -> Result<Evidence> {
    let db = store.path().display().to_string();
    let id = match run {
        Some(r) => r,
        None => store.latest_run()?.ok_or_else(|| {
            Error::usage(
                format!("no observation run in {db}"),
                "run `accessdesk reconcile` first",
            )
        })?,
    };
    let run = store.run(id)?.ok_or_else(|| {
        Error::usage(
            format!("no observation run {id} in {db}"),
            "`accessdesk findings list` names the newest run; omit --run for it",
        )
    })?;
    let now = Utc::now();
    let reads = store.checkpoints(id)?;
    let findings = store.findings(&FindingFilter {
        run: Some(id),
        ..Default::default()
    })?;
    let mut finding_ops = BTreeMap::new();
    for f in &findings {
        let ops = store.finding_ops(f.id)?;
        if !ops.is_empty() {
            finding_ops.insert(f.id, ops);
        }
    }
    let people: HashMap<String, Person> = store
        .all_people()?
        .into_iter()
        .map(|p| (p.hris_id.clone(), p))
        .collect();
    let mut access = Vec::new();
    for r in &reads {
        access.extend(access_rows(store, id, r, &findings, &people, now)?);
    }
    Ok(Evidence {
        generated_at: crate::store::queue::ts(now),
        generated_by: actor.to_string(),
        systems: systems(store, id, &reads)?,
        policy_sha256: policy_version(home)?,
        audit_head: audit_head(store)?,
        operations: operations(store, id)?,
        run,
        reads,
        access,
        findings,
        finding_ops,
    })
}

/// SHA-256 over policies.toml's bytes, then systems.toml's.
pub fn policy_version(home: &Home) -> Result<String> {
    let mut h = Sha256::new();
    for path in [home.policies_path(), home.systems_path()] {
        let bytes = std::fs::read(&path).map_err(|e| {
            Error::io(
                format!("reading {} for the policy version", path.display()),
                e,
            )
        })?;
        h.update(&bytes);
    }
    Ok(hex::encode(h.finalize()))
}

fn audit_head(store: &Store) -> Result<AuditHead> {
    let c = store.conn();
    let recorded: Option<String> = c
        .query_row("SELECT value FROM meta WHERE key = 'audit_head'", [], |r| {
            r.get(0)
        })
        .optional()?;
    let recorded = recorded.and_then(|v| {
        let (seq, hash) = v.split_once(':')?;
        Some((seq.parse().ok()?, hash.to_string()))
    });
    let last_event = c
        .query_row(
            "SELECT seq, hash FROM audit_events ORDER BY seq DESC LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    Ok(AuditHead {
        recorded,
        last_event,
    })
}

fn seconds_between(a: &str, b: &str) -> Option<f64> {
    let a = DateTime::parse_from_rfc3339(a).ok()?;
    let b = DateTime::parse_from_rfc3339(b).ok()?;
    Some((b - a).num_milliseconds() as f64 / 1000.0)
}

fn systems(store: &Store, run: i64, reads: &[Checkpoint]) -> Result<Vec<SystemInfo>> {
    let c = store.conn();
    let mut out = Vec::new();
    for r in reads {
        let (kind, api_version) = c
            .query_row(
                "SELECT kind, api_version FROM systems WHERE name = ?1",
                [&r.system],
                |row| Ok((Some(row.get(0)?), Some(row.get(1)?))),
            )
            .optional()?
            .unwrap_or((None, None));
        let last_full_read = c
            .query_row(
                "SELECT run_id, started_at, observed_at FROM observe_systems
                 WHERE system = ?1 AND run_id <= ?2 AND status = 'complete' AND observed_at IS NOT NULL
                 ORDER BY run_id DESC LIMIT 1",
                params![r.system, run],
                |row| {
                    let started: String = row.get(1)?;
                    let done: String = row.get(2)?;
                    Ok(LastRead {
                        run: row.get(0)?,
                        seconds: seconds_between(&started, &done),
                        started_at: started,
                        completed_at: done,
                    })
                },
            )
            .optional()?;
        out.push(SystemInfo {
            name: r.system.clone(),
            kind,
            api_version,
            read_status: r.status.clone(),
            last_full_read,
        });
    }
    Ok(out)
}

/// Who a row is about: a person, or an account nobody owns (by its vendor id).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Who {
    Person(String),
    Nobody(String, String),
}

#[derive(Debug, Default)]
struct Holding {
    accounts: Vec<String>,
    linked_by: Vec<String>,
    actual: BTreeSet<String>,
    active_account: bool,
}

/// Person → intended entitlements in `system` (entitlements are `SYSTEM:kind:name`).
fn intended_in(store: &Store, system: &str) -> Result<BTreeMap<String, BTreeSet<String>>> {
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut st = store.conn().prepare(
        "SELECT person_id, entitlement FROM intended_grants WHERE substr(entitlement, 1, length(?1)) = ?1",
    )?;
    let mut rows = st.query([format!("{system}:")])?;
    while let Some(r) = rows.next()? {
        out.entry(r.get(0)?).or_default().insert(r.get(1)?);
    }
    Ok(out)
}

/// Lower-cased login → the person accessdesk's accounts table says owns it.
fn owners_in(store: &Store, system: &str) -> Result<HashMap<String, String>> {
    let mut out = HashMap::new();
    let mut st = store.conn().prepare(
        "SELECT lower(login), person_id FROM accounts WHERE system = ?1 AND person_id IS NOT NULL",
    )?;
    let mut rows = st.query([system])?;
    while let Some(r) = rows.next()? {
        out.insert(r.get(0)?, r.get(1)?);
    }
    Ok(out)
}

/// Intended against actual access in one system of the run.
fn access_rows(
    store: &Store,
    run: i64,
    read: &Checkpoint,
    findings: &[FindingRow],
    people: &HashMap<String, Person>,
    now: DateTime<Utc>,
) -> Result<Vec<AccessRow>> {
    let system = read.system.as_str();
    let intended = intended_in(store, system)?;
    let owners = owners_in(store, system)?;
    let by_finding: HashMap<&str, (&str, i64)> = findings
        .iter()
        .filter(|f| f.system == system)
        .filter_map(|f| Some((f.account_id.as_deref()?, (f.person.as_deref()?, f.id))))
        .collect();
    let mut held: HashMap<String, Vec<String>> = HashMap::new();
    for (ent, acct) in store.observed_members(run, system)? {
        held.entry(acct).or_default().push(ent);
    }
    let mut rows: BTreeMap<Who, Holding> = BTreeMap::new();
    for p in intended.keys() {
        rows.entry(Who::Person(p.clone())).or_default();
    }
    for a in store.observed_accounts(run, system)? {
        let (who, link) = match owners.get(&a.login.to_lowercase()) {
            Some(p) => (Who::Person(p.clone()), "accounts table".to_string()),
            None => match by_finding.get(a.external_id.as_str()) {
                Some((p, id)) => (Who::Person(p.to_string()), format!("finding #{id}")),
                None => (
                    Who::Nobody(a.login.clone(), a.external_id.clone()),
                    String::new(),
                ),
            },
        };
        let h = rows.entry(who).or_default();
        h.accounts.push(if a.active {
            a.login.clone()
        } else {
            format!("{} (inactive)", a.login)
        });
        if !link.is_empty() {
            h.linked_by.push(link);
        }
        h.active_account |= a.active;
        h.actual
            .extend(held.remove(&a.external_id).unwrap_or_default());
    }
    let complete = read.status == "complete";
    Ok(rows
        .into_iter()
        .map(|(who, h)| {
            let person = match &who {
                Who::Person(p) => people.get(p),
                Who::Nobody(..) => None,
            };
            let want = match &who {
                Who::Person(p) => intended.get(p).cloned().unwrap_or_default(),
                Who::Nobody(..) => BTreeSet::new(),
            };
            let leaver = person.is_some_and(|p| p.is_leaver(now));
            let (status, note) = judge(&who, &h, &want, leaver, person.is_some(), complete);
            AccessRow {
                system: system.to_string(),
                person: match &who {
                    Who::Person(p) => Some(p.clone()),
                    Who::Nobody(..) => None,
                },
                name: person.map(display_name),
                hr_status: person.map(|p| p.status.as_str().to_string()),
                accounts: h.accounts,
                linked_by: h.linked_by,
                intended: want.into_iter().collect(),
                actual: h.actual.into_iter().collect(),
                status,
                note,
            }
        })
        .collect())
}

fn judge(
    who: &Who,
    h: &Holding,
    want: &BTreeSet<String>,
    leaver: bool,
    known: bool,
    complete: bool,
) -> (&'static str, String) {
    if !complete {
        return (
            NOT_READ,
            "this run did not read the system in full; actual access is partial".into(),
        );
    }
    match who {
        Who::Nobody(..) => (DIFFERS, "account owned by nobody in HR".into()),
        Who::Person(_) if !known => (DIFFERS, "person not in HR".into()),
        Who::Person(_) if leaver && h.active_account => {
            (DIFFERS, "leaver with an active account".into())
        }
        Who::Person(_) if *want != h.actual => (DIFFERS, String::new()),
        Who::Person(_) if h.accounts.is_empty() => {
            (MATCHES, "no account, no intended entitlement".into())
        }
        Who::Person(_) => (MATCHES, String::new()),
    }
}

/// `Preferred Family` (or HR's display name), as HR spells it.
fn display_name(p: &Person) -> String {
    if let Some(d) = p.display_name.as_deref().filter(|d| !d.trim().is_empty()) {
        return d.to_string();
    }
    let given = p
        .preferred_name
        .as_deref()
        .filter(|n| !n.trim().is_empty())
        .unwrap_or(&p.given_name);
    format!("{given} {}", p.family_name).trim().to_string()
}

fn operations(store: &Store, run: i64) -> Result<Vec<OpEvidence>> {
    let mut st = store.conn().prepare(
        "SELECT fo.finding_id, fo.op_id, o.kind, o.system, o.person_id, o.entitlement, o.status, o.created_at,
                o.updated_at, t.attempt, t.started_at, t.finished_at, t.outcome, t.http_status, t.vendor_code,
                t.error_class, t.message, t.request
         FROM findings f JOIN finding_ops fo ON fo.finding_id = f.id
         LEFT JOIN operations o ON o.id = fo.op_id
         LEFT JOIN op_attempts t ON t.op_id = fo.op_id
         WHERE f.run_id = ?1 ORDER BY fo.finding_id, fo.op_id, t.attempt",
    )?;
    let rows = st.query_map([run], |r| {
        Ok(OpEvidence {
            finding: r.get(0)?,
            op: r.get(1)?,
            kind: r.get(2)?,
            system: r.get(3)?,
            person: r.get(4)?,
            entitlement: r.get(5)?,
            status: r.get(6)?,
            created_at: r.get(7)?,
            updated_at: r.get(8)?,
            attempt: r.get(9)?,
            started_at: r.get(10)?,
            finished_at: r.get(11)?,
            outcome: r.get(12)?,
            http_status: r.get(13)?,
            vendor_code: r.get(14)?,
            error_class: r.get(15)?,
            message: r.get(16)?,
            request: r.get(17)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}
