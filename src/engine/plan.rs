//! Plan: the diff between intended access (policy) and actual access (last observed, plus
//! what is already queued or in flight), as a list of operations.
//!
//! The planner reads four sorted streams from SQLite (people, intended grants, observed
//! memberships, accounts: all ordered by person) and merges them person by person, so the
//! whole diff is one pass with no per-row lookups in large maps. Strings are shared: a
//! person's rows share one id; entitlement names are interned.

use crate::Result;
use crate::model::{EmploymentStatus, OperationKind};
use crate::store::Store;
use crate::store::scan::{Interner, text};
use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Which part of the world a plan covers.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Scope {
    pub system: Option<String>,
    pub person: Option<String>,
}

/// One operation the plan proposes.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct PlannedOp {
    pub kind: OperationKind,
    pub system: Arc<str>,
    pub person_id: Arc<str>,
    pub entitlement: Option<Arc<str>>,
    pub requires_approval: bool,
    /// Not before this time (a leaver's deactivation, scheduled for their end date).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub not_before: Option<DateTime<Utc>>,
    /// What an attribute update changes: `department: "Sales" -> "Engineering"; ...`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<Arc<str>>,
}

impl PlannedOp {
    fn new(
        kind: OperationKind,
        system: &Arc<str>,
        person: &Arc<str>,
        entitlement: Option<&Arc<str>>,
    ) -> PlannedOp {
        PlannedOp {
            kind,
            system: system.clone(),
            person_id: person.clone(),
            entitlement: entitlement.cloned(),
            requires_approval: false,
            not_before: None,
            detail: None,
        }
    }
}

/// What the diff needs to know about the configuration: each system's leaver policy,
/// and the time "now" is.
#[derive(Debug, Clone)]
pub struct Settings {
    pub now: DateTime<Utc>,
    /// Systems whose leavers also lose their memberships (`on_leave` other than
    /// `deactivate`).
    pub remove_on_leave: HashSet<String>,
    /// Each system's kind, to shape a mover's attributes the way the adapter writes them.
    pub kinds: HashMap<String, crate::model::SystemKind>,
    /// Each system's login template, to tell whether an e-mail change renames a login
    /// (systems not listed use their kind's default).
    pub logins: HashMap<String, crate::model::login::LoginTemplate>,
}

impl Settings {
    pub fn from_catalog(catalog: &crate::config::Catalog) -> Settings {
        Settings {
            now: Utc::now(),
            remove_on_leave: catalog
                .systems
                .iter()
                .filter(|(_, e)| e.on_leave.removes_memberships())
                .map(|(n, _)| n.clone())
                .collect(),
            kinds: catalog
                .systems
                .iter()
                .map(|(n, e)| (n.clone(), e.system.kind))
                .collect(),
            logins: catalog
                .systems
                .iter()
                .map(|(n, e)| (n.clone(), e.login.clone()))
                .collect(),
        }
    }
}

/// How long the planner spent reading and diffing.
#[derive(Debug, Clone, Copy, Default)]
pub struct Timing {
    pub read: Duration,
    pub diff: Duration,
    pub rows_read: usize,
}

/// Per-system account counts, for the mass-change guard.
pub type AccountCounts = HashMap<Arc<str>, usize>;

/// (kind, system, person, entitlement) of an operation not yet finished.
type InflightKey = (OperationKind, Arc<str>, Arc<str>, Option<Arc<str>>);

/// A person as the diff sees them: id, and when they leave (None: not leaving).
type PersonRow = (Arc<str>, Option<DateTime<Utc>>);

pub struct Inputs {
    people: Vec<PersonRow>,
    intended: Vec<(Arc<str>, Arc<str>, bool)>,
    observed: Vec<(Arc<str>, Arc<str>)>,
    accounts: Vec<(Arc<str>, Arc<str>, bool)>,
    inflight: HashSet<InflightKey>,
    /// Movers: (person, system) whose account's attributes differ from what accessdesk
    /// last wrote there, with what changes.
    updates: Updates,
    /// Rehires (`people.rehired_at` set, see `Tx::mark_rehired`): person -> the note their
    /// reactivations carry, `rehire (rehired YYYY-MM-DD)`.
    rehires: HashMap<Arc<str>, Arc<str>>,
    /// Each system's accounts, when the rows above are one person's (the guard's sizes).
    account_totals: Option<AccountCounts>,
}

/// (person, system) -> what an attribute update changes.
type Updates = HashMap<(Arc<str>, Arc<str>), Arc<str>>;

/// Accounts whose person changed since accessdesk last wrote the account's attributes,
/// compared attribute by attribute. Only people updated since are read and shaped, so an
/// import that changes nothing costs one indexed query.
fn read_movers(store: &Store, settings: &Settings, only: Option<&str>) -> Result<Updates> {
    let mut out = HashMap::new();
    let rows: Vec<(String, String, String)> = {
        let mut stmt = store.conn().prepare(&format!(
            "SELECT a.person_id, a.system, a.attrs FROM accounts a JOIN people p ON p.hris_id = a.person_id
             WHERE a.active = 1 AND a.attrs IS NOT NULL AND p.updated_at > a.attrs_at{}",
            if only.is_some() { " AND a.person_id = ?1" } else { "" }
        ))?;
        let map = |r: &rusqlite::Row<'_>| Ok((r.get(0)?, r.get(1)?, r.get(2)?));
        match only {
            Some(p) => stmt.query_map([p], map)?.collect::<rusqlite::Result<_>>()?,
            None => stmt.query_map([], map)?.collect::<rusqlite::Result<_>>()?,
        }
    };
    for (pid, system, attrs) in rows {
        let Some(kind) = settings.kinds.get(&system) else {
            continue;
        };
        let Some(person) = store.find_person(&pid)? else {
            continue;
        };
        let old: std::collections::BTreeMap<String, String> =
            serde_json::from_str(&attrs).unwrap_or_default();
        let new = crate::adapters::AccountSpec::for_person(&person, *kind, "").synced_attributes();
        let keys: std::collections::BTreeSet<&String> = old.keys().chain(new.keys()).collect();
        let mut changes = Vec::new();
        for k in keys {
            let (a, b) = (old.get(k), new.get(k));
            if a.map(String::as_str).unwrap_or("") != b.map(String::as_str).unwrap_or("") {
                changes.push(format!(
                    "{k}: {:?} -> {:?}",
                    a.map(String::as_str).unwrap_or(""),
                    b.map(String::as_str).unwrap_or("")
                ));
            }
        }
        // An e-mail change renames the login where it follows the e-mail and the vendor
        // allows it, or says why the login stays (engine/identity.rs `login_change`).
        if let Some(old_email) = old.get("email")
            && let Some(assigned) = store.login_of(&system, &pid)?
        {
            let template = settings
                .logins
                .get(&system)
                .cloned()
                .unwrap_or_else(|| crate::model::login::LoginTemplate::default_for(*kind));
            if let Some(c) = super::identity::login_change(
                &system,
                *kind,
                &template,
                &person,
                old_email,
                &assigned.login,
                |l| store.login_holder(&system, l, &pid),
            )? {
                changes.insert(0, c.describe());
            }
        }
        if !changes.is_empty() {
            out.insert(
                (Arc::from(pid.as_str()), Arc::from(system.as_str())),
                Arc::from(changes.join("; ").as_str()),
            );
        }
    }
    Ok(out)
}

/// Reuse the previous row's person id when it is the same (rows come sorted by person).
fn person_arc(last: &mut Option<Arc<str>>, pid: &str, people: &mut Interner) -> Arc<str> {
    match last {
        Some(p) if &**p == pid => p.clone(),
        _ => {
            let p = people.get(pid);
            *last = Some(p.clone());
            p
        }
    }
}

type Observed = Vec<(Arc<str>, Arc<str>)>;
type Accounts = Vec<(Arc<str>, Arc<str>, bool)>;

/// Observed memberships and accounts, both ordered by person.
fn read_actual(conn: &rusqlite::Connection, only: Option<&str>) -> Result<(Observed, Accounts)> {
    let params: Vec<&str> = only.into_iter().collect();
    let and_person = if only.is_some() {
        " AND person_id = ?1"
    } else {
        ""
    };
    let mut people_i = Interner::default();
    let mut ents = Interner::default();
    let mut systems = Interner::default();
    let mut observed = Vec::new();
    {
        let mut stmt = conn.prepare(&format!(
            "SELECT person_id, entitlement FROM observed_access INDEXED BY observed_by_person
             WHERE person_id IS NOT NULL{and_person} ORDER BY person_id, entitlement"
        ))?;
        let mut rows = stmt.query(rusqlite::params_from_iter(&params))?;
        let mut last = None;
        while let Some(r) = rows.next()? {
            let p = person_arc(&mut last, text(r, 0)?, &mut people_i);
            observed.push((p, ents.get(text(r, 1)?)));
        }
    }
    let mut accounts = Vec::new();
    {
        let mut stmt = conn.prepare(&format!(
            "SELECT person_id, system, active FROM accounts INDEXED BY accounts_by_person
             WHERE person_id IS NOT NULL{and_person} ORDER BY person_id, system"
        ))?;
        let mut rows = stmt.query(rusqlite::params_from_iter(&params))?;
        let mut last = None;
        while let Some(r) = rows.next()? {
            let p = person_arc(&mut last, text(r, 0)?, &mut people_i);
            accounts.push((p, systems.get(text(r, 1)?), r.get::<_, bool>(2)?));
        }
    }
    Ok((observed, accounts))
}

/// Read everything the diff needs. With a database file, actual access is read on a
/// second thread through its own connection while this one reads people, intended grants
/// and the queue.
pub fn read_inputs(store: &Store, settings: &Settings) -> Result<Inputs> {
    read_inputs_for(store, settings, None)
}

/// [`read_inputs`] for one person only (`only`: their HR id), read through the indexes
/// by person: what planning one person's change costs stays the same however large the
/// company is. The guard's per-system account totals are counted separately, since a
/// percentage needs the whole system's size.
pub fn read_inputs_for(store: &Store, settings: &Settings, only: Option<&str>) -> Result<Inputs> {
    if let Some(person) = only {
        let mut inputs = read_one(store, settings, Some(person))?;
        let mut totals: AccountCounts = HashMap::new();
        let mut stmt = store.conn().prepare_cached(
            "SELECT system, count(*) FROM accounts WHERE person_id IS NOT NULL GROUP BY system",
        )?;
        let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?;
        for row in rows {
            let (system, n) = row?;
            totals.insert(Arc::from(system.as_str()), n as usize);
        }
        inputs.account_totals = Some(totals);
        return Ok(inputs);
    }
    read_one(store, settings, None)
}

fn read_one(store: &Store, settings: &Settings, only: Option<&str>) -> Result<Inputs> {
    let updates = read_movers(store, settings, only)?;
    // One person's rows are few: no second reader.
    let reader = if only.is_some() {
        None
    } else {
        store.open_reader()?
    };
    let params: Vec<&str> = only.into_iter().collect();
    let filter = |col: &str, first: usize| {
        if only.is_some() {
            format!(" AND {col} = ?{first}")
        } else {
            String::new()
        }
    };
    std::thread::scope(|scope| {
        let actual = reader.map(|c| scope.spawn(move || read_actual(&c, None)));
        let conn = store.conn();
        let mut people_i = Interner::default();
        let mut ents = Interner::default();
        let mut systems = Interner::default();
        let mut people = Vec::new();
        let mut rehires = HashMap::new();
        {
            let mut stmt = conn.prepare(&format!(
                "SELECT hris_id, status, end_date, rehired_at FROM people WHERE 1{} ORDER BY hris_id",
                filter("hris_id", 1)
            ))?;
            let mut rows = stmt.query(rusqlite::params_from_iter(&params))?;
            while let Some(r) = rows.next()? {
                let status = text(r, 1)?.parse().unwrap_or(EmploymentStatus::Pending);
                let mut p = crate::model::Person::new("", "", "", "");
                p.status = status;
                p.end_date = match r.get_ref(2)? {
                    rusqlite::types::ValueRef::Text(t) => std::str::from_utf8(t)
                        .ok()
                        .and_then(|d| d.parse::<NaiveDate>().ok()),
                    _ => None,
                };
                let id = people_i.get(text(r, 0)?);
                if let rusqlite::types::ValueRef::Text(t) = r.get_ref(3)? {
                    let day = std::str::from_utf8(t).unwrap_or("").get(..10).unwrap_or("");
                    rehires.insert(
                        id.clone(),
                        Arc::from(format!("rehire (rehired {day})").as_str()),
                    );
                }
                people.push((id, p.leaves_at()));
            }
        }
        let mut intended = Vec::new();
        {
            // A grant an approver rejected is not asked for again while it rests on the
            // same inputs (the rule and the attributes it reads): it is left out here.
            let mut stmt = conn.prepare(&format!(
                "SELECT person_id, entitlement, requires_approval FROM intended_grants g
                 WHERE (expires_at IS NULL OR expires_at > ?1)
                   AND NOT (g.inputs IS NOT NULL AND EXISTS (SELECT 1 FROM approvals a
                       WHERE a.person_id = g.person_id AND a.entitlement = g.entitlement
                         AND a.status = 'rejected' AND a.inputs = g.inputs)){}
                 ORDER BY person_id, entitlement",
                filter("g.person_id", 2)
            ))?;
            // A time-bound grant past its expiry is no longer intended: the diff removes it.
            let now = chrono::Utc::now().to_rfc3339();
            let mut rows = stmt.query(rusqlite::params_from_iter(
                std::iter::once(now.as_str()).chain(params.iter().copied()),
            ))?;
            let mut last = None;
            while let Some(r) = rows.next()? {
                let p = person_arc(&mut last, text(r, 0)?, &mut people_i);
                intended.push((p, ents.get(text(r, 1)?), r.get::<_, bool>(2)?));
            }
        }
        let mut inflight = HashSet::new();
        {
            // Queue rows not finished, and an applied plan's operations not rows yet.
            let mut stmt = conn.prepare(&format!(
                "SELECT kind, system, person_id, entitlement FROM operations
                 WHERE status NOT IN ('succeeded', 'failed', 'cancelled'){}
                 UNION ALL SELECT kind, system, person_id, entitlement FROM ({}) WHERE 1{}",
                filter("person_id", 1),
                crate::store::backlog::BACKLOG_OPS,
                filter("person_id", 1),
            ))?;
            let mut rows = stmt.query(rusqlite::params_from_iter(&params))?;
            while let Some(r) = rows.next()? {
                let Ok(kind) = text(r, 0)?.parse::<OperationKind>() else {
                    continue;
                };
                let ent = match r.get_ref(3)? {
                    rusqlite::types::ValueRef::Text(t) => {
                        Some(ents.get(std::str::from_utf8(t).unwrap_or("")))
                    }
                    _ => None,
                };
                inflight.insert((
                    kind,
                    systems.get(text(r, 1)?),
                    people_i.get(text(r, 2)?),
                    ent,
                ));
            }
        }
        let (observed, accounts) = match actual {
            Some(handle) => handle.join().map_err(|_| {
                crate::Error::Failed("the planner's reader thread panicked".into())
            })??,
            None => read_actual(conn, only)?,
        };
        Ok(Inputs {
            people,
            intended,
            observed,
            accounts,
            inflight,
            updates,
            rehires,
            account_totals: None,
        })
    })
}

impl Inputs {
    pub fn rows(&self) -> usize {
        self.people.len()
            + self.intended.len()
            + self.observed.len()
            + self.accounts.len()
            + self.inflight.len()
    }

    /// Accounts per system (all, active or not).
    pub fn account_counts(&self) -> AccountCounts {
        if let Some(t) = &self.account_totals {
            return t.clone();
        }
        let mut m: AccountCounts = HashMap::new();
        for (_, s, _) in &self.accounts {
            *m.entry(s.clone()).or_default() += 1;
        }
        m
    }
}

fn system_of(ent: &str) -> &str {
    ent.split(':').next().unwrap_or(ent)
}

/// Take the run of rows belonging to `person` from the front of a sorted slice.
fn take_run<'a, T>(
    rows: &'a [T],
    pos: &mut usize,
    person: &str,
    key: impl Fn(&T) -> &str,
) -> &'a [T] {
    // Skip rows for people who are not in the people table (should not happen: FKs).
    while *pos < rows.len() && key(&rows[*pos]) < person {
        *pos += 1;
    }
    let start = *pos;
    while *pos < rows.len() && key(&rows[*pos]) == person {
        *pos += 1;
    }
    &rows[start..*pos]
}

/// The diff. Operations come out grouped by person, in person order; within a person,
/// deactivations and account creations before memberships.
///
/// A leaver (terminated, or past their end date) intends nothing: every active account is
/// deactivated, and on systems whose leaver policy removes memberships, every membership
/// still observed is removed. Someone with a future end date keeps their access until
/// then, and their deactivations are planned now, scheduled for that time.
pub fn diff(inputs: &Inputs, scope: &Scope, settings: &Settings) -> Vec<PlannedOp> {
    let mut out = Vec::new();
    let (mut ii, mut oi, mut ai) = (0usize, 0usize, 0usize);
    let inflight = |k: OperationKind, s: &Arc<str>, p: &Arc<str>, e: Option<&Arc<str>>| {
        inputs
            .inflight
            .contains(&(k, s.clone(), p.clone(), e.cloned()))
    };
    let mut interned_systems: HashMap<&str, Arc<str>> = HashMap::new();
    for (person, leaves_at) in &inputs.people {
        let intended = take_run(&inputs.intended, &mut ii, person, |r| &r.0);
        let observed = take_run(&inputs.observed, &mut oi, person, |r| &r.0);
        let accounts = take_run(&inputs.accounts, &mut ai, person, |r| &r.0);
        if let Some(p) = &scope.person
            && **person != **p
        {
            continue;
        }
        let in_scope = |sys: &str| scope.system.as_deref().is_none_or(|s| s == sys);
        let leaver = leaves_at.is_some_and(|t| t <= settings.now);
        if let Some(t) = leaves_at {
            for (_, sys, active) in accounts {
                if *active
                    && in_scope(sys)
                    && !inflight(OperationKind::Deactivate, sys, person, None)
                {
                    let mut op = PlannedOp::new(OperationKind::Deactivate, sys, person, None);
                    op.not_before = (!leaver).then_some(*t);
                    out.push(op);
                }
            }
        }
        if leaver {
            for (_, ent) in observed {
                let sys = system_of(ent);
                if !in_scope(sys) || !settings.remove_on_leave.contains(sys) {
                    continue;
                }
                let sys_arc = interned_systems
                    .entry(sys)
                    .or_insert_with(|| Arc::from(sys))
                    .clone();
                if !inflight(OperationKind::RemoveMembership, &sys_arc, person, Some(ent)) {
                    out.push(PlannedOp::new(
                        OperationKind::RemoveMembership,
                        &sys_arc,
                        person,
                        Some(ent),
                    ));
                }
            }
            continue;
        }
        // Accounts: every system the person has intended access in needs one.
        let mut last_sys: Option<&str> = None;
        for (_, ent, _) in intended {
            let sys = system_of(ent);
            if last_sys == Some(sys) || !in_scope(sys) {
                continue;
            }
            last_sys = Some(sys);
            let sys_arc = interned_systems
                .entry(sys)
                .or_insert_with(|| Arc::from(sys))
                .clone();
            match accounts.iter().find(|(_, s, _)| &**s == sys) {
                None => {
                    if !inflight(OperationKind::CreateAccount, &sys_arc, person, None) {
                        out.push(PlannedOp::new(
                            OperationKind::CreateAccount,
                            &sys_arc,
                            person,
                            None,
                        ));
                    }
                }
                Some((_, s, false)) => {
                    if !inflight(OperationKind::Reactivate, s, person, None) {
                        let mut op = PlannedOp::new(OperationKind::Reactivate, s, person, None);
                        // A returning leaver's access comes back as a rehire.
                        op.detail = inputs.rehires.get(person).cloned();
                        out.push(op);
                    }
                }
                Some(_) => {}
            }
        }
        // Movers: attributes that changed since accessdesk last wrote them.
        for (_, sys, active) in accounts {
            if !*active || !in_scope(sys) {
                continue;
            }
            if let Some(detail) = inputs.updates.get(&(person.clone(), sys.clone()))
                && !inflight(OperationKind::UpdateAttributes, sys, person, None)
            {
                let mut op = PlannedOp::new(OperationKind::UpdateAttributes, sys, person, None);
                op.detail = Some(detail.clone());
                out.push(op);
            }
        }
        // Memberships: a sorted merge of intended against observed.
        let (mut a, mut b) = (0usize, 0usize);
        while a < intended.len() || b < observed.len() {
            let ord = match (intended.get(a), observed.get(b)) {
                (Some(x), Some(y)) => x.1.cmp(&y.1),
                (Some(_), None) => std::cmp::Ordering::Less,
                (None, _) => std::cmp::Ordering::Greater,
            };
            let (kind, ent, approval) = match ord {
                std::cmp::Ordering::Equal => {
                    a += 1;
                    b += 1;
                    continue;
                }
                std::cmp::Ordering::Less => {
                    let (_, ent, approval) = &intended[a];
                    a += 1;
                    (OperationKind::AddMembership, ent, *approval)
                }
                std::cmp::Ordering::Greater => {
                    let (_, ent) = &observed[b];
                    b += 1;
                    (OperationKind::RemoveMembership, ent, false)
                }
            };
            let sys = system_of(ent);
            if !in_scope(sys) {
                continue;
            }
            let sys_arc = interned_systems
                .entry(sys)
                .or_insert_with(|| Arc::from(sys))
                .clone();
            if !inflight(kind, &sys_arc, person, Some(ent)) {
                let mut op = PlannedOp::new(kind, &sys_arc, person, Some(ent));
                op.requires_approval = approval;
                out.push(op);
            }
        }
    }
    out
}

/// Read and diff, timing both.
pub fn compute(
    store: &Store,
    scope: &Scope,
    settings: &Settings,
) -> Result<(Vec<PlannedOp>, Inputs, Timing)> {
    let t = Instant::now();
    let inputs = read_inputs_for(store, settings, scope.person.as_deref())?;
    let read = t.elapsed();
    let t = Instant::now();
    let ops = diff(&inputs, scope, settings);
    let diff_t = t.elapsed();
    let rows = inputs.rows();
    Ok((
        ops,
        inputs,
        Timing {
            read,
            diff: diff_t,
            rows_read: rows,
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Grant, Person};
    use crate::store::access::AccountRow;

    fn grant(p: &str, e: &str, approval: bool) -> Grant {
        Grant {
            person_id: p.into(),
            entitlement: e.parse().unwrap(),
            rule: "r".into(),
            requires_approval: approval,
            expires_at: None,
        }
    }

    fn settings() -> Settings {
        Settings {
            now: Utc::now(),
            remove_on_leave: HashSet::new(),
            kinds: HashMap::new(),
            logins: HashMap::new(),
        }
    }

    fn ops_of(
        store: &Store,
        scope: &Scope,
    ) -> Vec<(OperationKind, String, String, Option<String>)> {
        let (ops, _, _) = compute(store, scope, &settings()).unwrap();
        ops.into_iter()
            .map(|o| {
                (
                    o.kind,
                    o.system.to_string(),
                    o.person_id.to_string(),
                    o.entitlement.map(|e| e.to_string()),
                )
            })
            .collect()
    }

    fn world() -> Store {
        let mut s = Store::open_in_memory().unwrap();
        s.write(|tx| {
            let mut leaver = Person::new("E3", "C", "D", "c@x.io");
            leaver.status = EmploymentStatus::Terminated;
            for p in [
                Person::new("E1", "A", "B", "a@x.io"),
                Person::new("E2", "B", "C", "b@x.io"),
                leaver,
            ] {
                tx.upsert_person(&p, "t")?;
            }
            tx.replace_intended_grants(
                "E1",
                &[
                    grant("E1", "okta:group:eng", false),
                    grant("E1", "github:team:eng", false),
                    grant("E1", "github:team:admins", true),
                ],
                "t",
            )?;
            tx.replace_intended_grants("E2", &[grant("E2", "okta:group:eng", false)], "t")?;
            // E2 already has an okta account with eng, plus a stale sales group.
            tx.upsert_account(
                &AccountRow {
                    system: "okta".into(),
                    person_id: Some("E2".into()),
                    login: "b@x.io".into(),
                    external_id: None,
                    active: true,
                },
                "t",
            )?;
            tx.set_observed("okta", "b@x.io", Some("E2"), "okta:group:eng", true, "t")?;
            tx.set_observed("okta", "b@x.io", Some("E2"), "okta:group:sales", true, "t")?;
            // The leaver still has an active github account.
            tx.upsert_account(
                &AccountRow {
                    system: "github".into(),
                    person_id: Some("E3".into()),
                    login: "cd".into(),
                    external_id: None,
                    active: true,
                },
                "t",
            )?;
            Ok(())
        })
        .unwrap();
        s
    }

    #[test]
    fn diff_covers_every_kind() {
        use OperationKind::*;
        let s = world();
        let ops = ops_of(&s, &Scope::default());
        let expect = vec![
            (CreateAccount, "github".to_string(), "E1".to_string(), None),
            (CreateAccount, "okta".into(), "E1".into(), None),
            (
                AddMembership,
                "github".into(),
                "E1".into(),
                Some("github:team:admins".to_string()),
            ),
            (
                AddMembership,
                "github".into(),
                "E1".into(),
                Some("github:team:eng".into()),
            ),
            (
                AddMembership,
                "okta".into(),
                "E1".into(),
                Some("okta:group:eng".into()),
            ),
            (
                RemoveMembership,
                "okta".into(),
                "E2".into(),
                Some("okta:group:sales".into()),
            ),
            (Deactivate, "github".into(), "E3".into(), None),
        ];
        assert_eq!(ops, expect);
        let (planned, _, _) = compute(&s, &Scope::default(), &settings()).unwrap();
        assert!(
            planned
                .iter()
                .any(|o| o.requires_approval
                    && o.entitlement.as_deref() == Some("github:team:admins"))
        );
    }

    #[test]
    fn expired_time_bound_grants_are_removed() {
        let mut s = world();
        s.write(|tx| {
            let mut g = grant("E2", "okta:group:eng", false);
            g.rule = "temp".into();
            g.expires_at = Some(chrono::Utc::now() - chrono::Duration::hours(1));
            tx.replace_intended_grants("E2", &[g], "t")
        })
        .unwrap();
        let ops = ops_of(
            &s,
            &Scope {
                system: None,
                person: Some("E2".into()),
            },
        );
        let removed: Vec<_> = ops
            .iter()
            .filter(|o| o.0 == OperationKind::RemoveMembership)
            .map(|o| o.3.clone().unwrap())
            .collect();
        assert_eq!(
            removed,
            vec!["okta:group:eng".to_string(), "okta:group:sales".to_string()]
        );
    }

    #[test]
    fn scope_limits_the_plan() {
        let s = world();
        let only_okta = ops_of(
            &s,
            &Scope {
                system: Some("okta".into()),
                person: None,
            },
        );
        assert!(only_okta.iter().all(|o| o.1 == "okta"));
        assert_eq!(only_okta.len(), 3);
        let only_e2 = ops_of(
            &s,
            &Scope {
                system: None,
                person: Some("E2".into()),
            },
        );
        assert_eq!(only_e2.len(), 1);
    }

    #[test]
    fn one_persons_read_plans_what_the_whole_read_plans_for_them() {
        let mut s = world();
        // Something in flight and an observed account, so every input has rows.
        s.write(|tx| {
            tx.enqueue(
                &crate::store::queue::NewOp {
                    kind: OperationKind::AddMembership,
                    system: "github",
                    person_id: "E1",
                    entitlement: Some("github:team:eng"),
                    status: crate::model::OperationStatus::Queued,
                    priority: crate::store::queue::PRIORITY_NORMAL,
                    plan_id: None,
                    cause: "t",
                    depends_on: &[],
                    not_before: None,
                    counted_as: None,
                },
                "t",
            )
            .map(|_| ())
        })
        .unwrap();
        let whole = read_inputs(&s, &settings()).unwrap();
        for person in ["E1", "E2", "E3", "E9"] {
            let scope = Scope {
                system: None,
                person: Some(person.into()),
            };
            let one = read_inputs_for(&s, &settings(), Some(person)).unwrap();
            assert_eq!(
                diff(&one, &scope, &settings()),
                diff(&whole, &scope, &settings()),
                "{person}"
            );
            // The guard still sees each system's size.
            assert_eq!(one.account_counts(), whole.account_counts(), "{person}");
            assert!(one.rows() < whole.rows() || person == "E9");
        }
    }

    #[test]
    fn end_dates_make_leavers_and_schedule_deactivations() {
        let mut s = world();
        let today = Utc::now().date_naive();
        s.write(|tx| {
            // E1 leaves next week: still gets their access, deactivation scheduled.
            let mut soon = Person::new("E1", "A", "B", "a@x.io");
            soon.end_date = today.checked_add_days(chrono::Days::new(7));
            tx.upsert_person(&soon, "t")?;
            tx.upsert_account(
                &AccountRow {
                    system: "okta".into(),
                    person_id: Some("E1".into()),
                    login: "a@x.io".into(),
                    external_id: Some("00u1".into()),
                    active: true,
                },
                "t",
            )?;
            // E2's end date is past although HR still says active: a leaver.
            let mut gone = Person::new("E2", "B", "C", "b@x.io");
            gone.end_date = today.checked_sub_days(chrono::Days::new(1));
            tx.upsert_person(&gone, "t")
        })
        .unwrap();
        let mut st = settings();
        st.remove_on_leave.insert("okta".into());
        let (ops, _, _) = compute(&s, &Scope::default(), &st).unwrap();
        let e1: Vec<_> = ops.iter().filter(|o| &*o.person_id == "E1").collect();
        let d = e1
            .iter()
            .find(|o| o.kind == OperationKind::Deactivate)
            .expect("E1's deactivation is planned");
        let due = today
            .checked_add_days(chrono::Days::new(8))
            .unwrap()
            .and_hms_opt(0, 0, 0)
            .unwrap()
            .and_utc();
        assert_eq!(d.not_before, Some(due));
        assert!(
            e1.iter().any(|o| o.kind == OperationKind::AddMembership),
            "until then E1 keeps getting their access: {e1:?}"
        );
        // E2: deactivated now, the observed membership removed (okta removes on leave),
        // and the intended grant not added.
        let e2: Vec<_> = ops
            .iter()
            .filter(|o| &*o.person_id == "E2")
            .map(|o| {
                (
                    o.kind,
                    o.entitlement.as_deref().map(str::to_string),
                    o.not_before,
                )
            })
            .collect();
        assert_eq!(
            e2,
            vec![
                (OperationKind::Deactivate, None, None),
                (
                    OperationKind::RemoveMembership,
                    Some("okta:group:eng".to_string()),
                    None
                ),
                (
                    OperationKind::RemoveMembership,
                    Some("okta:group:sales".to_string()),
                    None
                ),
            ]
        );
        // Without the removal policy only the deactivation is planned.
        let (ops, _, _) = compute(&s, &Scope::default(), &settings()).unwrap();
        assert_eq!(
            ops.iter().filter(|o| &*o.person_id == "E2").count(),
            1,
            "{ops:?}"
        );
    }

    #[test]
    fn queued_work_is_not_planned_twice() {
        let mut s = world();
        s.write(|tx| {
            tx.conn().execute(
                "INSERT INTO operations (idempotency_key, kind, system, person_id, entitlement, status, created_at, updated_at)
                 VALUES ('k1', 'create_account', 'okta', 'E1', NULL, 'queued', 'now', 'now'),
                        ('k2', 'remove_membership', 'okta', 'E2', 'okta:group:sales', 'running', 'now', 'now')",
                [],
            )?;
            Ok(())
        })
        .unwrap();
        let ops = ops_of(&s, &Scope::default());
        assert!(
            !ops.iter()
                .any(|o| o.0 == OperationKind::CreateAccount && o.1 == "okta")
        );
        assert!(!ops.iter().any(|o| o.0 == OperationKind::RemoveMembership));
        assert_eq!(ops.len(), 5);
    }
}
