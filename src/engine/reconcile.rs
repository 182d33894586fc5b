//! Reconcile: correlate what a run observed with people, classify the drift into
//! findings, and make complete observations the actual access the planner diffs against.
//!
//! **Correlation.** Each observed account is matched to people by the system's rules
//! (`correlate` in systems.toml, default link → hris_id → email → login), tried in order;
//! the first rule that names anyone decides. One candidate: linked. None: orphan. More
//! than one: ambiguous, flagged, never guessed. An account that carries an HR id is never
//! matched to anyone else by a weaker rule: if the link names someone else it is
//! ambiguous, and if the HR id is nobody's it is an orphan. Only a match by link or HR id
//! *proves* the account is the person's; matches by e-mail or login are reported as such,
//! and the observed access on such an account is not attached to the person (identity
//! before access: the engine would stop at an identity conflict before acting on it).
//!
//! **Classification** (`Class`): leavers with access first, then by severity. A grant or
//! removal with an operation already in flight (queued, running, retrying, verifying,
//! scheduled, awaiting approval, blocked) is work in progress, not drift. Nothing is
//! concluded from what a read did not cover: an incomplete read reports orphans and
//! attribute drift only once its account listing finished, and memberships only for the
//! groups it read in full. Accounts that appeared during the read are left for the next.
//!
//! **Reality drives the plan.** A complete read replaces the system's rows of `accounts`
//! and `observed_access` (marked `observed`), except what accessdesk changed since the
//! read started: a membership added or removed, or an account written, by an operation
//! that succeeded after the read began stays as the operation left it.

use crate::config::systems::{Correlate, OnLeave};
use crate::config::{Catalog, SystemEntry};
use crate::model::{Person, RiskLevel};
use crate::store::Store;
use crate::store::reconcile::{
    AccountRow, Checkpoint, NewFinding, ObservedAccount, bytes, opt_text, text,
};
use crate::{Error, Result};
use chrono::{DateTime, Utc};
use rusqlite::{OptionalExtension, params};
use serde::Serialize;
use std::borrow::Cow;
use std::collections::{HashMap, HashSet};

/// Finding classes, in the order they are listed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Class {
    LeaverWithAccess,
    Orphan,
    Excess,
    Unmanaged,
    Ambiguous,
    Missing,
    AttributeDrift,
}

impl Class {
    pub const ALL: [Class; 7] = [
        Class::LeaverWithAccess,
        Class::Orphan,
        Class::Excess,
        Class::Unmanaged,
        Class::Ambiguous,
        Class::Missing,
        Class::AttributeDrift,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Class::LeaverWithAccess => "leaver_with_access",
            Class::Orphan => "orphan",
            Class::Excess => "excess",
            Class::Unmanaged => "unmanaged",
            Class::Ambiguous => "ambiguous",
            Class::Missing => "missing",
            Class::AttributeDrift => "attribute_drift",
        }
    }

    pub fn parse(s: &str) -> Option<Class> {
        Self::ALL.into_iter().find(|c| c.as_str() == s)
    }
}

/// Severity: critical, high, medium, low.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    Critical,
    High,
    Medium,
    Low,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        ["critical", "high", "medium", "low"][self as usize]
    }
}

/// A finding's severity, from its class and the entitlement's risk. A leaver still
/// holding access is always critical; so is excess privileged access.
pub fn severity(class: Class, risk: Option<RiskLevel>, active: bool) -> Severity {
    match class {
        Class::LeaverWithAccess => Severity::Critical,
        Class::Excess => match risk {
            Some(RiskLevel::Privileged) => Severity::Critical,
            Some(RiskLevel::High) => Severity::High,
            Some(RiskLevel::Medium) => Severity::Medium,
            _ => Severity::Low,
        },
        Class::Orphan => match (active, risk) {
            (false, _) => Severity::Low,
            (true, Some(RiskLevel::Privileged | RiskLevel::High)) => Severity::High,
            (true, _) => Severity::Medium,
        },
        Class::Unmanaged | Class::Ambiguous => Severity::Medium,
        Class::Missing | Class::AttributeDrift => Severity::Low,
    }
}

fn finding(
    class: Class,
    sev: Severity,
    system: &str,
    person: Option<&str>,
    acct: Option<&AccountRow<'_>>,
    entitlement: Option<&str>,
    detail: String,
) -> NewFinding {
    let leaver = class == Class::LeaverWithAccess;
    NewFinding {
        class: class.as_str(),
        severity: sev.as_str(),
        // Leavers first; then by severity; then by class (the order of `Class`).
        rank: if leaver { 0 } else { 100 } + 10 * sev as i64 + class as i64,
        system: system.to_string(),
        person: person.map(str::to_string),
        account: acct.map(|a| a.login.to_string()),
        account_id: acct.map(|a| a.external_id.to_string()),
        entitlement: entitlement.map(str::to_string),
        detail,
    }
}

/// Maps over many keys (people, logins, entitlements): a fast seeded hash.
type FastMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

/// `s` lower-cased, borrowed when it already is.
fn lower(s: &str) -> Cow<'_, str> {
    if s.is_ascii() {
        if s.bytes().any(|b| b.is_ascii_uppercase()) {
            Cow::Owned(s.to_ascii_lowercase())
        } else {
            Cow::Borrowed(s)
        }
    } else {
        Cow::Owned(s.to_lowercase())
    }
}

/// Everything classification needs that is not the observation itself. People are held
/// by index, packed into arenas (never as a quarter of a million [`Person`]s); intended
/// entitlements are interned, so a run over a million accounts compares integers, not
/// strings.
#[derive(Debug)]
pub struct World {
    /// HR id → index. A table of bare indices whose keys live in one arena (`hot`), so a
    /// lookup touches a few small arrays, not each person's heap.
    index: hashbrown::HashTable<u32>,
    hasher: foldhash::fast::RandomState,
    /// Everyone in HR (in HR id order when loaded from the store), packed.
    hot: Hot,
    /// Lower-cased work e-mail → people (one entry per person; homonyms share a hash).
    by_email: hashbrown::HashTable<u32>,
    /// The entitlements intended grants name; an entitlement's id is its index.
    ents: Vec<String>,
    ent_ids: FastMap<String, u32>,
    /// Per person (by index): where the ids of their intended entitlements (in every
    /// system) lie in `intended_ids`. One flat array, not a vector per person.
    intended_at: Vec<(u32, u32)>,
    intended_ids: Vec<u32>,
    /// system → lower-cased login → the person accessdesk's accounts table links it to.
    links: FastMap<String, FastMap<String, String>>,
    /// system → person → a login linked to them there (the reverse of `links`).
    linked_login: FastMap<String, FastMap<String, String>>,
    /// system → lower-cased login → the person accessdesk assigned that login.
    logins: FastMap<String, FastMap<String, String>>,
    /// (person, system, entitlement or None for the account) with an operation still in
    /// flight: a grant or removal already on its way is not drift.
    in_flight: HashSet<(String, String, Option<String>)>,
    pub now: DateTime<Utc>,
}

/// The HR fields attribute drift compares, in this order.
const HR_FIELDS: [&str; 5] = ["department", "title", "costCenter", "location", "email"];
/// Where `HR_FIELDS` keeps the work e-mail.
const EMAIL: usize = 4;
/// The names shaping needs, kept after `HR_FIELDS`: given, family, preferred, display.
const GIVEN: usize = HR_FIELDS.len();
const FAMILY: usize = GIVEN + 1;
const PREFERRED: usize = GIVEN + 2;
const DISPLAY: usize = GIVEN + 3;
const TEXT_FIELDS: usize = GIVEN + 4;

/// Per person, packed into arenas: their HR id, whether and when they left, and the text
/// classification reads. A million accounts in random order then hit a few megabytes
/// instead of scattered `Person`s, and 250,000 people cost tens of megabytes, not
/// hundreds.
#[derive(Debug, Default)]
struct Hot {
    /// HR ids, back to back, and each person's span of it: kept apart from the fields so
    /// the index's key checks stay within a small, cache-resident arena.
    ids: String,
    id_spans: Vec<(u32, u32)>,
    /// The `TEXT_FIELDS`, back to back, and each person's spans of them.
    fields: String,
    field_spans: Vec<[(u32, u32); TEXT_FIELDS]>,
    leaver: Vec<bool>,
    end_date: Vec<Option<chrono::NaiveDate>>,
}

/// One person as [`Hot`] keeps them, borrowed from a [`Person`] or a row of `people`.
struct PersonParts<'a> {
    id: &'a str,
    text: [&'a str; TEXT_FIELDS],
    status: crate::model::EmploymentStatus,
    end_date: Option<chrono::NaiveDate>,
}

impl<'a> PersonParts<'a> {
    fn of(p: &'a Person) -> Self {
        PersonParts {
            id: &p.hris_id,
            text: [
                &p.department,
                &p.title,
                &p.cost_center,
                &p.location,
                &p.email,
                &p.given_name,
                &p.family_name,
                p.preferred_name.as_deref().unwrap_or_default(),
                p.display_name.as_deref().unwrap_or_default(),
            ],
            status: p.status,
            end_date: p.end_date,
        }
    }
}

fn push_text(arena: &mut String, s: &str) -> (u32, u32) {
    let start = arena.len() as u32;
    arena.push_str(s);
    (start, arena.len() as u32)
}

impl Hot {
    fn len(&self) -> usize {
        self.id_spans.len()
    }

    /// Set person `i` (the next index appends; a known one is replaced).
    fn set(&mut self, i: usize, p: &PersonParts<'_>, now: DateTime<Utc>) {
        let id = push_text(&mut self.ids, p.id);
        let spans = p.text.map(|t| push_text(&mut self.fields, t));
        let leaver = crate::model::leaves_at(p.status, p.end_date).is_some_and(|t| t <= now);
        if i == self.len() {
            self.id_spans.push(id);
            self.field_spans.push(spans);
            self.leaver.push(leaver);
            self.end_date.push(p.end_date);
        } else {
            self.id_spans[i] = id;
            self.field_spans[i] = spans;
            self.leaver[i] = leaver;
            self.end_date[i] = p.end_date;
        }
    }

    /// Person `i`'s text field `field` (an index into `HR_FIELDS`, or `GIVEN`...).
    fn field(&self, i: usize, field: usize) -> &str {
        let (a, b) = self.field_spans[i][field];
        &self.fields[a as usize..b as usize]
    }

    fn id(&self, i: usize) -> &str {
        let (a, b) = self.id_spans[i];
        &self.ids[a as usize..b as usize]
    }

    /// "Given Family (HR id)", as findings name people.
    fn display(&self, i: usize) -> String {
        format!(
            "{} {} ({})",
            self.field(i, GIVEN),
            self.field(i, FAMILY),
            self.id(i)
        )
    }

    /// When person `i` left, as a finding says it.
    fn left_on(&self, i: usize) -> String {
        match self.end_date[i] {
            Some(d) => format!("end date {d}"),
            None => "terminated in HR".into(),
        }
    }

    fn names(&self, i: usize) -> crate::model::names::NameParts<'_> {
        let opt = |f| Some(self.field(i, f)).filter(|s| !s.is_empty());
        crate::model::names::NameParts {
            given: self.field(i, GIVEN),
            family: self.field(i, FAMILY),
            preferred: opt(PREFERRED),
            display: opt(DISPLAY),
        }
    }
}

/// Intended grants as loaded: the interned entitlements, and per person (in HR id order)
/// their HR id and the ids of their entitlements, packed flat.
struct IntendedRows {
    ents: Vec<String>,
    /// HR ids back to back, and per person: their id's end, and their ids' end.
    people: String,
    ends: Vec<(u32, u32)>,
    ids: Vec<u32>,
}

impl IntendedRows {
    /// (person, their entitlement ids), in order.
    fn iter(&self) -> impl Iterator<Item = (&str, &[u32])> {
        let mut from = (0usize, 0usize);
        self.ends.iter().map(move |&(p, e)| {
            let (p, e) = (p as usize, e as usize);
            let out = (&self.people[from.0..p], &self.ids[from.1..e]);
            from = (p, e);
            out
        })
    }
}

fn load_intended(
    c: &rusqlite::Connection,
    from: Option<&str>,
    to: Option<&str>,
) -> Result<IntendedRows> {
    let mut out = IntendedRows {
        ents: Vec::new(),
        people: String::new(),
        ends: Vec::new(),
        ids: Vec::new(),
    };
    // Matched on bytes; text is checked (UTF-8) once per person and entitlement.
    let mut ent_ids: FastMap<Vec<u8>, u32> = FastMap::default();
    // The primary key orders rows by person: each person's grants arrive together.
    // Bounds spelled out (not `?1 IS NULL OR ...`), so SQLite seeks to the range.
    let (sql, args): (&str, Vec<&str>) = match (from, to) {
        (Some(f), Some(t)) => (
            "SELECT person_id, entitlement FROM intended_grants WHERE person_id >= ?1 AND person_id < ?2 ORDER BY person_id",
            vec![f, t],
        ),
        (Some(f), None) => (
            "SELECT person_id, entitlement FROM intended_grants WHERE person_id >= ?1 ORDER BY person_id",
            vec![f],
        ),
        (None, Some(t)) => (
            "SELECT person_id, entitlement FROM intended_grants WHERE person_id < ?1 ORDER BY person_id",
            vec![t],
        ),
        (None, None) => (
            "SELECT person_id, entitlement FROM intended_grants ORDER BY person_id",
            vec![],
        ),
    };
    let mut st = c.prepare(sql)?;
    let mut rows = st.query(rusqlite::params_from_iter(args))?;
    let mut last_start = 0usize;
    while let Some(r) = rows.next()? {
        let ent = bytes(r, 1)?;
        let id = match ent_ids.get(ent) {
            Some(id) => *id,
            None => {
                let id = out.ents.len() as u32;
                out.ents.push(text(r, 1)?.to_string());
                ent_ids.insert(ent.to_vec(), id);
                id
            }
        };
        let person = bytes(r, 0)?;
        let same = !out.ends.is_empty() && out.people.as_bytes()[last_start..] == *person;
        if !same {
            last_start = out.people.len();
            out.people.push_str(text(r, 0)?);
            out.ends
                .push((out.people.len() as u32, out.ids.len() as u32));
        }
        out.ids.push(id);
        if let Some(last) = out.ends.last_mut() {
            last.1 = out.ids.len() as u32;
        }
    }
    Ok(out)
}

impl World {
    pub fn new(now: DateTime<Utc>) -> World {
        World {
            index: hashbrown::HashTable::new(),
            hasher: foldhash::fast::RandomState::default(),
            hot: Hot::default(),
            by_email: hashbrown::HashTable::new(),
            ents: Vec::new(),
            ent_ids: FastMap::default(),
            intended_at: Vec::new(),
            intended_ids: Vec::new(),
            links: FastMap::default(),
            linked_login: FastMap::default(),
            logins: FastMap::default(),
            in_flight: HashSet::new(),
            now,
        }
    }

    /// How many people.
    fn len(&self) -> usize {
        self.hot.len()
    }

    fn hash(&self, s: &str) -> u64 {
        std::hash::BuildHasher::hash_one(&self.hasher, s)
    }

    fn index_of(&self, id: &str) -> Option<usize> {
        self.index
            .find(self.hash(id), |&i| self.hot.id(i as usize) == id)
            .map(|&i| i as usize)
    }

    /// The people whose work e-mail is `email` (any case), in the order they were added.
    fn with_email(&self, email: &str) -> Vec<usize> {
        let key = lower(email);
        let mut out: Vec<usize> = self
            .by_email
            .iter_hash(self.hash(&key))
            .map(|&i| i as usize)
            .filter(|&i| lower(self.hot.field(i, EMAIL)) == key)
            .collect();
        out.sort_unstable();
        out
    }

    /// Add a person (or replace the one with the same HR id).
    pub fn add_person(&mut self, p: Person) {
        self.add_parts(&PersonParts::of(&p));
    }

    fn add_parts(&mut self, p: &PersonParts<'_>) {
        let i = match self.index_of(p.id) {
            Some(i) => {
                // Replaced: out of the old e-mail's entries (back in below).
                let old = self.hash(&lower(self.hot.field(i, EMAIL)));
                if let Ok(e) = self.by_email.find_entry(old, |&j| j as usize == i) {
                    e.remove();
                }
                i
            }
            None => {
                let i = self.hot.len();
                let hash = self.hash(p.id);
                let (hot, hasher) = (&self.hot, &self.hasher);
                self.index.insert_unique(hash, i as u32, |&j| {
                    std::hash::BuildHasher::hash_one(hasher, hot.id(j as usize))
                });
                self.intended_at.push((0, 0));
                i
            }
        };
        self.hot.set(i, p, self.now);
        let hash = self.hash(&lower(p.text[EMAIL]));
        let (hot, hasher) = (&self.hot, &self.hasher);
        self.by_email.insert_unique(hash, i as u32, |&j| {
            std::hash::BuildHasher::hash_one(hasher, lower(hot.field(j as usize, EMAIL)).as_ref())
        });
    }

    fn ent_id(&mut self, ent: &str) -> u32 {
        if let Some(&id) = self.ent_ids.get(ent) {
            return id;
        }
        let id = self.ents.len() as u32;
        self.ents.push(ent.to_string());
        self.ent_ids.insert(ent.to_string(), id);
        id
    }

    /// Record that policy grants `person` the entitlement (ignored for someone not in HR).
    pub fn intend(&mut self, person: &str, ent: &str) {
        let id = self.ent_id(ent);
        if let Some(i) = self.index_of(person) {
            self.set_intended(i, |ids| ids.push(id));
        }
    }

    /// Person `i`'s intended entitlement ids.
    fn intended(&self, i: usize) -> &[u32] {
        let (start, len) = self.intended_at[i];
        &self.intended_ids[start as usize..(start + len) as usize]
    }

    /// Change person `i`'s intended ids: their span moves to the end of the flat array
    /// unless it is there already (loading appends each person once; `intend` is for
    /// small worlds).
    fn set_intended(&mut self, i: usize, f: impl FnOnce(&mut Vec<u32>)) {
        let (start, len) = self.intended_at[i];
        let (start, len) = (start as usize, len as usize);
        if start + len != self.intended_ids.len() || len == 0 {
            let old = start..start + len;
            let at = self.intended_ids.len();
            self.intended_ids.extend_from_within(old);
            self.intended_at[i] = (at as u32, len as u32);
        }
        let at = self.intended_at[i].0 as usize;
        let mut tail = self.intended_ids.split_off(at);
        f(&mut tail);
        self.intended_at[i] = (at as u32, tail.len() as u32);
        self.intended_ids.extend_from_slice(&tail);
    }

    /// Record accessdesk's link of a login in a system to a person.
    pub fn link(&mut self, system: &str, login: &str, person: &str) {
        self.links
            .entry(system.to_string())
            .or_default()
            .insert(login.to_lowercase(), person.to_string());
        self.linked_login
            .entry(system.to_string())
            .or_default()
            .insert(person.to_string(), login.to_string());
    }

    /// Record a login accessdesk assigned a person in a system.
    pub fn assign_login(&mut self, system: &str, login: &str, person: &str) {
        self.logins
            .entry(system.to_string())
            .or_default()
            .insert(login.to_lowercase(), person.to_string());
    }

    /// Record an operation in flight for a person's account (`None`) or entitlement.
    pub fn in_flight(&mut self, person: &str, system: &str, ent: Option<&str>) {
        self.in_flight.insert((
            person.to_string(),
            system.to_string(),
            ent.map(str::to_string),
        ));
    }

    fn moving(&self, person: &str, system: &str, ent: Option<&str>) -> bool {
        !self.in_flight.is_empty()
            && self.in_flight.contains(&(
                person.to_string(),
                system.to_string(),
                ent.map(str::to_string),
            ))
    }

    /// Load people, intended grants, links, assigned logins and work in flight. The
    /// intended grants (the largest part) load meanwhile on two readers of their own,
    /// each taking half of the people. People are read straight into the arenas, row by
    /// row, never as a list of [`Person`]s.
    pub fn load(store: &Store, now: DateTime<Utc>) -> Result<World> {
        let c = store.conn();
        let mode = store.read_mode();
        // The HR id that splits the grants in two (by the primary key's order).
        let middle: Option<String> = c
            .query_row(
                "SELECT hris_id FROM people ORDER BY hris_id LIMIT 1 OFFSET (SELECT count(*) / 2 FROM people)",
                [],
                |r| r.get(0),
            )
            .optional()?;
        let readers = match (
            &middle,
            store.open_reader_in(mode)?,
            store.open_reader_in(mode)?,
        ) {
            (Some(m), Some(a), Some(b)) => {
                Some(((a, None, Some(m.clone())), (b, Some(m.clone()), None)))
            }
            _ => None,
        };
        std::thread::scope(|scope| {
            let halves = readers.map(|(lo, hi)| {
                let spawn =
                    |(conn, from, to): (rusqlite::Connection, Option<String>, Option<String>)| {
                        scope.spawn(move || load_intended(&conn, from.as_deref(), to.as_deref()))
                    };
                (spawn(lo), spawn(hi))
            });
            let mut w = World::new(now);
            let people: i64 = c.query_row("SELECT count(*) FROM people", [], |r| r.get(0))?;
            let people = people as usize;
            w.hot.id_spans.reserve(people);
            w.hot.field_spans.reserve(people);
            w.intended_at.reserve(people);
            w.index.reserve(people, |_| 0);
            let mut st = c.prepare(
                "SELECT hris_id, department, title, cost_center, location, email, given_name,
                        family_name, preferred_name, display_name, status, end_date
                 FROM people ORDER BY hris_id",
            )?;
            let mut rows = st.query([])?;
            while let Some(r) = rows.next()? {
                let t = |k| text(r, k);
                let o = |k| opt_text(r, k).map(Option::unwrap_or_default);
                let status = t(10)?;
                let parts = PersonParts {
                    id: t(0)?,
                    text: [
                        t(1)?,
                        t(2)?,
                        t(3)?,
                        t(4)?,
                        t(5)?,
                        t(6)?,
                        t(7)?,
                        o(8)?,
                        o(9)?,
                    ],
                    // The CHECK constraint keeps this to the four known values.
                    status: status
                        .parse()
                        .unwrap_or(crate::model::EmploymentStatus::Pending),
                    end_date: r.get(11)?,
                };
                w.add_parts(&parts);
            }
            let mut st = c.prepare(
                "SELECT system, login, person_id FROM accounts WHERE person_id IS NOT NULL",
            )?;
            let mut rows = st.query([])?;
            while let Some(r) = rows.next()? {
                w.link(text(r, 0)?, text(r, 1)?, text(r, 2)?);
            }
            let mut st = c.prepare(&format!(
                "SELECT person_id, system, entitlement FROM operations
                 WHERE status IN ('queued','running','retry_wait','verifying','scheduled','pending_approval','blocked')
                 UNION ALL SELECT person_id, system, entitlement FROM ({})",
                crate::store::backlog::BACKLOG_OPS
            ))?;
            let mut rows = st.query([])?;
            while let Some(r) = rows.next()? {
                w.in_flight(text(r, 0)?, text(r, 1)?, opt_text(r, 2)?);
            }
            let mut st = c.prepare("SELECT system, login_key, person_id FROM logins")?;
            let mut rows = st.query([])?;
            while let Some(r) = rows.next()? {
                w.assign_login(text(r, 0)?, text(r, 1)?, text(r, 2)?);
            }
            let join = |h: std::thread::ScopedJoinHandle<'_, Result<IntendedRows>>| {
                h.join().unwrap_or_else(|_| {
                    Err(Error::Failed("loading intended grants panicked".into()))
                })
            };
            let parts = match halves {
                Some((lo, hi)) => vec![join(lo)?, join(hi)?],
                None => vec![load_intended(c, None, None)?],
            };
            for rows in parts {
                // This part's entitlement ids → the world's.
                let ids_here: Vec<u32> = rows.ents.iter().map(|e| w.ent_id(e)).collect();
                for (person, ids) in rows.iter() {
                    let Some(i) = w.index_of(person) else {
                        continue;
                    };
                    let at = w.intended_ids.len();
                    w.intended_ids
                        .extend(ids.iter().map(|e| ids_here[*e as usize]));
                    w.intended_at[i] = (at as u32, ids.len() as u32);
                }
            }
            Ok(w)
        })
    }
}

/// How an account was matched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Match<'w> {
    Linked {
        person: &'w str,
        by: Correlate,
    },
    Orphan {
        why: String,
    },
    Ambiguous {
        candidates: Vec<String>,
        why: String,
    },
}

/// Match one account to people by the system's rules.
pub fn correlate<'w>(
    w: &'w World,
    system: &str,
    rules: &[Correlate],
    a: &AccountRow<'_>,
) -> Match<'w> {
    correlate_at(&SystemMaps::of(w, system), rules, a).0
}

/// One system's share of the world's login maps, looked up once per system instead of
/// once per account.
struct SystemMaps<'w> {
    w: &'w World,
    links: Option<&'w FastMap<String, String>>,
    linked_login: Option<&'w FastMap<String, String>>,
    logins: Option<&'w FastMap<String, String>>,
}

impl<'w> SystemMaps<'w> {
    fn of(w: &'w World, system: &str) -> Self {
        SystemMaps {
            w,
            links: w.links.get(system),
            linked_login: w.linked_login.get(system),
            logins: w.logins.get(system),
        }
    }
}

/// [`correlate`], with the matched person's index in the world when the match found
/// them by HR id (saving a second lookup for the commonest match).
fn correlate_at<'w>(
    maps: &SystemMaps<'w>,
    rules: &[Correlate],
    a: &AccountRow<'_>,
) -> (Match<'w>, Option<usize>) {
    let w = maps.w;
    let login = lower(a.login);
    let linked: Option<&'w str> = maps
        .links
        .and_then(|m| m.get(login.as_ref()))
        .map(String::as_str);
    // The target's own claim comes first: an account carrying an HR id is that person's
    // or nobody's, whatever a weaker rule would say.
    if let Some(h) = a.hris_id.filter(|h| !h.is_empty()) {
        if let Some(l) = linked
            && l != h
            && rules.contains(&Correlate::Link)
        {
            let why = format!("linked to {l}, but the account carries HR id {h}");
            let candidates = vec![l.to_string(), h.to_string()];
            return (Match::Ambiguous { candidates, why }, None);
        }
        // An account carrying the HR id of someone accessdesk already links to another
        // account here: two accounts claim one person. Nobody's until an admin says.
        if let Some(other) = maps.linked_login.and_then(|m| m.get(h))
            && linked.is_none()
            && rules.contains(&Correlate::Link)
        {
            let why = format!(
                "carries HR id {h}, but {h}'s account here is {other}: two accounts claim one person"
            );
            return (
                Match::Ambiguous {
                    candidates: vec![h.to_string()],
                    why,
                },
                None,
            );
        }
        if rules.contains(&Correlate::HrisId) {
            return match w.index_of(h) {
                Some(i) => (
                    Match::Linked {
                        person: w.hot.id(i),
                        by: if linked.is_some() {
                            Correlate::Link
                        } else {
                            Correlate::HrisId
                        },
                    },
                    Some(i),
                ),
                None => (
                    Match::Orphan {
                        why: format!("carries HR id {h}, which is nobody in HR"),
                    },
                    None,
                ),
            };
        }
    }
    for rule in rules {
        let candidates: Vec<&'w str> = match rule {
            Correlate::Link => linked.into_iter().collect(),
            Correlate::HrisId => Vec::new(), // handled above
            Correlate::Email => a
                .email
                .or_else(|| a.login.contains('@').then_some(a.login))
                .map(|e| w.with_email(e).into_iter().map(|i| w.hot.id(i)).collect())
                .unwrap_or_default(),
            Correlate::Login => maps
                .logins
                .and_then(|m| m.get(login.as_ref()))
                .map(String::as_str)
                .into_iter()
                .collect(),
        };
        match candidates.len() {
            0 => continue,
            1 => {
                let m = Match::Linked {
                    person: candidates[0],
                    by: *rule,
                };
                return (m, None);
            }
            _ => {
                let m = Match::Ambiguous {
                    why: format!(
                        "{} people match by {}: {}",
                        candidates.len(),
                        rule.as_str(),
                        candidates.join(", ")
                    ),
                    candidates: candidates.into_iter().map(str::to_string).collect(),
                };
                return (m, None);
            }
        }
    }
    let why = "no person matches it".into();
    (Match::Orphan { why }, None)
}

/// One system's observation held in memory (tests and small reads; runs stream theirs
/// from the store through [`SystemClassifier`]).
#[derive(Debug, Clone)]
pub struct SystemObservation {
    pub read: Checkpoint,
    pub accounts: Vec<ObservedAccount>,
    /// (entitlement, vendor id, catalogued), in the order the read went through them.
    pub groups: Vec<(String, String, bool)>,
    /// (entitlement, account external id).
    pub members: Vec<(String, String)>,
}

fn complete(read: &Checkpoint) -> bool {
    read.status == "complete"
}

/// How many of `groups` (in read order) had their members read in full.
fn groups_read(read: &Checkpoint, groups: usize) -> usize {
    if complete(read) {
        groups
    } else if read.phase == "members" {
        (read.ent_index.max(0) as usize).min(groups)
    } else {
        0
    }
}

/// The attributes the target reported that differ from what accessdesk would write for
/// the person now (as [`crate::adapters::AccountSpec::synced_attributes`] has them). HR's
/// own fields are compared directly; names are shaped only when the target reported one.
fn attribute_drift(w: &World, pi: usize, entry: &SystemEntry, a: &AccountRow<'_>) -> Vec<String> {
    let mut differs = Vec::new();
    let mut shaped: Option<(String, String, String)> = None;
    a.attributes.for_each(|k, have| {
        if k == "manager" {
            return;
        }
        let direct = HR_FIELDS
            .iter()
            .position(|f| *f == k)
            .map(|f| w.hot.field(pi, f));
        let should: &str = match (direct, k) {
            (Some(v), _) => v,
            (None, "givenName" | "familyName" | "displayName") => {
                let (given, family, display) = shaped.get_or_insert_with(|| {
                    crate::model::names::shape_names(&w.hot.names(pi), entry.system.kind)
                });
                match k {
                    "givenName" => given,
                    "familyName" => family,
                    _ => display,
                }
            }
            // Nothing accessdesk writes.
            (None, _) => "",
        };
        // Compare with what the adapter would have written: IAM drops characters a tag
        // value cannot hold ("R&D" is stored as "RD").
        let same = match entry.system.kind {
            crate::model::SystemKind::AwsIam => {
                have.trim() == crate::adapters::aws_iam::tag_value(should)
            }
            _ => have == should || have.trim() == should.trim(),
        };
        if !same {
            differs.push(format!("{k}: target {have:?}, HR {should:?}"));
        }
    });
    differs
}

/// Classifies one system's accounts as they stream past, then the people it never saw.
/// Pure: the same inputs give the same findings.
pub struct SystemClassifier<'a> {
    w: &'a World,
    maps: SystemMaps<'a>,
    entry: &'a SystemEntry,
    system: &'a str,
    groups: &'a [(String, String, bool)],
    /// Per group: its members were read in full.
    read: Vec<bool>,
    risk: Vec<Option<RiskLevel>>,
    /// Per interned entitlement: `None` when it belongs to another system, else the
    /// index of the group the read saw for it (if any).
    local: Vec<Option<Option<u32>>>,
    accounts_read: bool,
    /// Per person: an account here was matched to them (by any rule).
    with_account: Vec<bool>,
    /// Per person (and one past the last): where their intended groups start in
    /// `intended`, and how many entitlements policy grants them here (seen or not).
    intended_at: Vec<(u32, u32)>,
    /// The groups the read saw that policy grants, person after person (sorted each).
    intended: Vec<u32>,
    out: Vec<NewFinding>,
}

impl<'a> SystemClassifier<'a> {
    pub fn new(
        w: &'a World,
        entry: &'a SystemEntry,
        read: &Checkpoint,
        groups: &'a [(String, String, bool)],
    ) -> Self {
        let system = entry.system.name.as_str();
        let n_read = groups_read(read, groups.len());
        let by_name: HashMap<&str, u32> = groups
            .iter()
            .enumerate()
            .map(|(i, g)| (g.0.as_str(), i as u32))
            .collect();
        let prefix = format!("{system}:");
        SystemClassifier {
            w,
            maps: SystemMaps::of(w, system),
            entry,
            system,
            groups,
            read: (0..groups.len()).map(|i| i < n_read).collect(),
            risk: groups
                .iter()
                .map(|g| {
                    let r: crate::model::EntitlementRef = g.0.parse().ok()?;
                    entry.entitlements.get(&(r.kind, r.name)).map(|e| e.risk)
                })
                .collect(),
            local: w
                .ents
                .iter()
                .map(|e| {
                    e.starts_with(&prefix)
                        .then(|| by_name.get(e.as_str()).copied())
                })
                .collect(),
            // Orphans, attributes and missing accounts need the whole account listing.
            accounts_read: complete(read) || read.phase != "accounts",
            with_account: vec![false; w.len()],
            intended_at: Vec::new(),
            intended: Vec::new(),
            out: Vec::new(),
        }
        .with_intended()
    }

    /// Index what policy grants each person in this system (one pass over the grants).
    fn with_intended(mut self) -> Self {
        self.intended_at.reserve(self.w.len() + 1);
        for ids in (0..self.w.len()).map(|i| self.w.intended(i)) {
            let start = self.intended.len();
            let mut here = 0u32;
            for &e in ids {
                if let Some(g) = self.local[e as usize] {
                    here += 1;
                    self.intended.extend(g);
                }
            }
            self.intended[start..].sort_unstable();
            self.intended_at.push((start as u32, here));
        }
        self.intended_at.push((self.intended.len() as u32, 0));
        self
    }

    /// One account and the groups (indices into the read's groups) it holds.
    pub fn account(&mut self, a: &AccountRow<'_>, held: &[u32]) {
        if !self.accounts_read || a.late {
            // Accounts that appeared during the read are left for the next one.
            return;
        }
        let (w, system, groups) = (self.w, self.system, self.groups);
        let top_risk = held.iter().filter_map(|&g| self.risk[g as usize]).max();
        let (matched, at) = correlate_at(&self.maps, &self.entry.correlate, a);
        let person = match matched {
            // An orphan that can neither sign in nor holds anything (deactivated, say, by
            // an enforced finding) gives nobody access: not drift.
            Match::Orphan { .. }
                if !(if has_sign_in_state(self.entry.system.kind) {
                    a.active
                } else {
                    !held.is_empty()
                }) =>
            {
                return;
            }
            Match::Orphan { why } => {
                self.out.push(finding(
                    Class::Orphan,
                    severity(Class::Orphan, top_risk, a.active),
                    system,
                    None,
                    Some(a),
                    None,
                    format!(
                        "{} account {} ({why}); {} entitlements",
                        if a.active { "active" } else { "inactive" },
                        a.login,
                        held.len()
                    ),
                ));
                return;
            }
            Match::Ambiguous { why, .. } => {
                self.out.push(finding(
                    Class::Ambiguous,
                    severity(Class::Ambiguous, None, a.active),
                    system,
                    None,
                    Some(a),
                    None,
                    format!(
                        "account {}: {why}; link it with `accessdesk account link`",
                        a.login
                    ),
                ));
                return;
            }
            Match::Linked { person, by } => (person, by),
        };
        let (person, by) = person;
        let Some(pi) = at.or_else(|| w.index_of(person)) else {
            return;
        };
        let pid = w.hot.id(pi);
        self.with_account[pi] = true;
        let by_note = if by.proves() {
            String::new()
        } else {
            format!(" (matched by {} only, not proven)", by.as_str())
        };
        if w.hot.leaver[pi] {
            let keeps = held.iter().filter(|&&g| self.read[g as usize]).count();
            // Where accounts have no sign-in state (the identity store), what a leaver
            // keeps is their memberships.
            let stateless = !has_sign_in_state(self.entry.system.kind);
            let groups_matter = stateless || self.entry.on_leave != OnLeave::Deactivate;
            let active = a.active && !stateless;
            if active || (groups_matter && keeps > 0) {
                let what = if active {
                    format!("account {} still active", a.login)
                } else {
                    format!(
                        "account {} inactive but holds {keeps} entitlements",
                        a.login
                    )
                };
                self.out.push(finding(
                    Class::LeaverWithAccess,
                    Severity::Critical,
                    system,
                    Some(pid),
                    Some(a),
                    None,
                    format!(
                        "{} left ({}); {what}{by_note}",
                        w.hot.display(pi),
                        w.hot.left_on(pi)
                    ),
                ));
            }
            return;
        }
        // The groups policy grants this person here that the read saw (sorted).
        let (from, to) = (
            self.intended_at[pi].0 as usize,
            self.intended_at[pi + 1].0 as usize,
        );
        for &g in held {
            if !self.read[g as usize] || self.intended[from..to].contains(&g) {
                continue;
            }
            let (ent, _, catalogued) = &groups[g as usize];
            if *catalogued && w.moving(pid, system, Some(ent)) {
                continue;
            }
            self.out.push(if *catalogued {
                finding(
                    Class::Excess,
                    severity(Class::Excess, self.risk[g as usize], a.active),
                    system,
                    Some(pid),
                    Some(a),
                    Some(ent),
                    format!("{} holds {ent}, which no policy grants{by_note}", w.hot.display(pi)),
                )
            } else {
                finding(
                    Class::Unmanaged,
                    Severity::Medium,
                    system,
                    Some(pid),
                    Some(a),
                    Some(ent),
                    format!(
                        "{} holds {ent}, which the catalogue does not list (reported, never changed)",
                        w.hot.display(pi)
                    ),
                )
            });
        }
        // Groups are in entitlement order, so the findings are too.
        for i in from..to {
            let g = self.intended[i];
            let ent = groups[g as usize].0.as_str();
            if !self.read[g as usize] || held.contains(&g) || w.moving(pid, system, Some(ent)) {
                continue;
            }
            self.out.push(finding(
                Class::Missing,
                Severity::Low,
                system,
                Some(pid),
                Some(a),
                Some(ent),
                format!(
                    "{} should hold {ent} (policy), the target does not show it{by_note}",
                    w.hot.display(pi)
                ),
            ));
        }
        // Attributes: only those the target reported, against what HR says.
        if a.active {
            let differs = attribute_drift(w, pi, self.entry, a);
            if !differs.is_empty() {
                self.out.push(finding(
                    Class::AttributeDrift,
                    Severity::Low,
                    system,
                    Some(pid),
                    Some(a),
                    None,
                    format!("{}: {}{by_note}", w.hot.display(pi), differs.join("; ")),
                ));
            }
        }
    }

    /// The findings, after intended access for people with no account here at all.
    pub fn finish(mut self) -> Vec<NewFinding> {
        if !self.accounts_read {
            return self.out;
        }
        let (w, system) = (self.w, self.system);
        for pi in 0..w.len() {
            let n = self.intended_at[pi].1;
            if n == 0 || self.with_account[pi] || w.hot.leaver[pi] {
                continue;
            }
            let pid = w.hot.id(pi);
            if w.moving(pid, system, None) {
                continue;
            }
            self.out.push(finding(
                Class::Missing,
                Severity::Low,
                system,
                Some(pid),
                None,
                None,
                format!(
                    "{} has no account in {system}; policy grants {n} entitlements there",
                    w.hot.display(pi)
                ),
            ));
        }
        self.out
    }
}

/// Classify one system's observation held in memory.
pub fn classify(w: &World, entry: &SystemEntry, obs: &SystemObservation) -> Vec<NewFinding> {
    let index: HashMap<&str, u32> = obs
        .groups
        .iter()
        .enumerate()
        .map(|(i, g)| (g.0.as_str(), i as u32))
        .collect();
    let mut held: HashMap<&str, Vec<u32>> = HashMap::new();
    for (ent, acct) in &obs.members {
        if let Some(&g) = index.get(ent.as_str()) {
            held.entry(acct.as_str()).or_default().push(g);
        }
    }
    let mut c = SystemClassifier::new(w, entry, &obs.read, &obs.groups);
    for a in &obs.accounts {
        let h = held
            .get(a.external_id.as_str())
            .map_or(&[][..], Vec::as_slice);
        c.account(&a.as_row(), h);
    }
    c.finish()
}

/// Whether accounts of this kind can be disabled (sign-in stopped) while they exist. The
/// AWS identity store has no such state: deactivating there removes the memberships.
pub fn has_sign_in_state(kind: crate::model::SystemKind) -> bool {
    kind != crate::model::SystemKind::AwsIdentityStore
}

/// What reconciling a run found.
#[derive(Debug, Clone, Serialize)]
pub struct Reconciled {
    pub run: i64,
    pub complete: bool,
    pub systems: Vec<SystemSummary>,
    pub findings: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct SystemSummary {
    pub system: String,
    pub complete: bool,
    pub accounts: i64,
    pub memberships: i64,
    pub observed_at: Option<String>,
    pub error: Option<String>,
}

/// A run correlated and classified, not yet written.
pub struct Classified {
    pub world: World,
    pub findings: Vec<NewFinding>,
    pub systems: Vec<SystemSummary>,
    /// Each classified system's read.
    pub reads: Vec<Checkpoint>,
}

/// Classify one system of a run, streaming its accounts and memberships from `conn`.
pub fn classify_system(
    conn: &rusqlite::Connection,
    w: &World,
    entry: &SystemEntry,
    run: i64,
    read: &Checkpoint,
) -> Result<Vec<NewFinding>> {
    let groups = crate::store::reconcile::observed_groups_in(conn, run, &read.system)?;
    let mut c = SystemClassifier::new(w, entry, read, &groups);
    crate::store::reconcile::for_each_observed_account(
        conn,
        run,
        &read.system,
        &groups,
        |a, held| {
            c.account(a, held);
            Ok(())
        },
    )?;
    Ok(c.finish())
}

/// A system's findings, by the system's place in the run's reads.
type SystemFindings = (usize, Vec<NewFinding>);

/// The order findings are listed in: leavers and severity first (`rank`).
fn finding_order(a: &NewFinding, b: &NewFinding) -> std::cmp::Ordering {
    (a.rank, &a.system, &a.person, &a.account, &a.entitlement).cmp(&(
        b.rank,
        &b.system,
        &b.person,
        &b.account,
        &b.entitlement,
    ))
}

/// Load a run's observations and classify every system in it (no writes). Systems are
/// classified in parallel, each worker with a reader connection of its own where the
/// store has a file, taking the next system as it finishes one.
pub fn classify_run(store: &Store, catalog: &Catalog, run: i64) -> Result<Classified> {
    let world = World::load(store, Utc::now())?;
    let reads: Vec<Checkpoint> = store
        .checkpoints(run)?
        .into_iter()
        .filter(|c| catalog.systems.contains_key(&c.system))
        .collect();
    let workers = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .clamp(1, 4)
        .min(reads.len().max(1));
    let mut readers = Vec::new();
    for _ in 1..workers {
        match store.open_reader_in(store.read_mode())? {
            Some(c) => readers.push(c),
            None => break,
        }
    }
    let next = std::sync::atomic::AtomicUsize::new(0);
    let work = |conn: &rusqlite::Connection| -> Result<Vec<SystemFindings>> {
        let mut out = Vec::new();
        loop {
            let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let Some(read) = reads.get(i) else {
                return Ok(out);
            };
            let entry = &catalog.systems[&read.system];
            let mut f = classify_system(conn, &world, entry, run, read)?;
            // Sorted here, in parallel; the merge below then finds sorted runs.
            f.sort_by(finding_order);
            out.push((i, f));
        }
    };
    let results: Vec<Result<Vec<SystemFindings>>> = std::thread::scope(|scope| {
        let handles: Vec<_> = readers
            .into_iter()
            .map(|conn| scope.spawn(move || work(&conn)))
            .collect();
        let mut results = vec![work(store.conn())];
        results.extend(handles.into_iter().map(|h| {
            h.join()
                .unwrap_or_else(|_| Err(Error::Failed("a classifier thread panicked".into())))
        }));
        results
    });
    let mut per_system: Vec<SystemFindings> = Vec::new();
    for r in results {
        per_system.extend(r?);
    }
    per_system.sort_by_key(|(i, _)| *i);
    let mut findings = Vec::new();
    for (_, f) in per_system {
        findings.extend(f);
    }
    findings.sort_by(finding_order);
    let systems = reads
        .iter()
        .map(|r| SystemSummary {
            system: r.system.clone(),
            complete: complete(r),
            accounts: r.accounts,
            memberships: r.memberships,
            observed_at: r.observed_at.clone(),
            error: r.error.clone(),
        })
        .collect();
    Ok(Classified {
        world,
        findings,
        systems,
        reads,
    })
}

/// Correlate and classify a run, store its findings, and make each complete read the
/// actual access the planner sees.
pub fn reconcile_run(
    store: &mut Store,
    catalog: &Catalog,
    run: i64,
    actor: &str,
) -> Result<Reconciled> {
    let meta = store.run(run)?.ok_or_else(|| {
        Error::usage(
            format!("no observation run {run}"),
            "see `accessdesk findings list` for runs",
        )
    })?;
    // Read through the page cache, not a memory map: a run of a million memberships
    // would otherwise map the whole file into resident memory.
    let was = store.read_mode();
    store.set_read_mode(crate::store::ReadMode::Paged)?;
    let result = reconcile_paged(store, catalog, run, actor, &meta);
    store.set_read_mode(was)?;
    result
}

fn reconcile_paged(
    store: &mut Store,
    catalog: &Catalog,
    run: i64,
    actor: &str,
    meta: &crate::store::reconcile::RunRow,
) -> Result<Reconciled> {
    let c = classify_run(store, catalog, run)?;
    let n = c.findings.len();
    store.write(|tx| {
        tx.store_findings(run, &c.findings, actor)?;
        for read in c.reads.iter().filter(|r| complete(r)) {
            let entry = &catalog.systems[&read.system];
            adopt_observation(tx, &c.world, entry, run, read, &meta.started_at, actor)?;
        }
        Ok(())
    })?;
    Ok(Reconciled {
        run,
        complete: meta.status == "complete" && c.systems.iter().all(|s| s.complete),
        systems: c.systems,
        findings: n,
    })
}

/// Make a complete read the system's actual access: accounts and catalogued memberships
/// as observed, with person links only where proven, keeping what operations changed
/// after the read started. Streams the read account by account, so memory stays flat.
fn adopt_observation(
    tx: &mut crate::store::Tx<'_>,
    w: &World,
    entry: &SystemEntry,
    run: i64,
    read: &Checkpoint,
    read_started: &str,
    actor: &str,
) -> Result<()> {
    let system = entry.system.name.as_str();
    let observed_at = read
        .observed_at
        .clone()
        .unwrap_or_else(|| read_started.to_string());
    // What operations changed since the read began: (login, entitlement) memberships
    // and the accounts they wrote. Their rows stay as the operations left them.
    let mut touched_access: HashSet<(String, String)> = HashSet::new();
    let mut touched_accounts: HashSet<String> = HashSet::new();
    let c = tx.conn();
    {
        let mut st = c.prepare(
            "SELECT account_login, entitlement FROM observed_access WHERE system = ?1 AND source = 'recorded' AND observed_at >= ?2",
        )?;
        let mut rows = st.query(params![system, read_started])?;
        while let Some(r) = rows.next()? {
            touched_access.insert((r.get::<_, String>(0)?.to_lowercase(), r.get(1)?));
        }
        let mut st = c.prepare(
            "SELECT a.login, o.entitlement FROM operations o JOIN accounts a ON a.system = o.system AND a.person_id = o.person_id
             WHERE o.system = ?1 AND o.status = 'succeeded' AND o.updated_at >= ?2 AND o.entitlement IS NOT NULL",
        )?;
        let mut rows = st.query(params![system, read_started])?;
        while let Some(r) = rows.next()? {
            touched_access.insert((r.get::<_, String>(0)?.to_lowercase(), r.get(1)?));
        }
        let mut st = c.prepare(
            "SELECT lower(login) FROM accounts WHERE system = ?1 AND source = 'recorded' AND observed_at >= ?2",
        )?;
        let mut rows = st.query(params![system, read_started])?;
        while let Some(r) = rows.next()? {
            touched_accounts.insert(r.get(0)?);
        }
    }
    let touched = |login: &str, ent: &str| {
        !touched_access.is_empty() && touched_access.contains(&(login.to_string(), ent.to_string()))
    };
    let groups = crate::store::reconcile::observed_groups_in(c, run, system)?;
    let mut upsert_account = c.prepare_cached(
        "INSERT INTO accounts (system, person_id, login, external_id, active, observed_at, source)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'observed')
         ON CONFLICT(system, login) DO UPDATE SET
           person_id = COALESCE(accounts.person_id, excluded.person_id),
           external_id = excluded.external_id, active = excluded.active,
           observed_at = excluded.observed_at, source = 'observed'",
    )?;
    let mut owner_of =
        c.prepare_cached("SELECT person_id FROM accounts WHERE system = ?1 AND login = ?2")?;
    let mut existing_of = c.prepare_cached(
        "SELECT entitlement FROM observed_access WHERE system = ?1 AND account_login = ?2",
    )?;
    let mut drop_access = c.prepare_cached(
        "DELETE FROM observed_access WHERE system = ?1 AND account_login = ?2 AND entitlement = ?3",
    )?;
    let mut upsert_access = c.prepare_cached(
        "INSERT INTO observed_access (system, account_login, person_id, entitlement, observed_at, source)
         VALUES (?1, ?2, ?3, ?4, ?5, 'observed')
         ON CONFLICT(system, account_login, entitlement) DO UPDATE SET person_id = excluded.person_id,
           observed_at = excluded.observed_at, source = 'observed'",
    )?;
    let maps = SystemMaps::of(w, system);
    let mut seen_logins: HashSet<String> = HashSet::new();
    let (mut accounts, mut memberships, mut removed, mut added) = (0usize, 0usize, 0usize, 0usize);
    let mut want: Vec<&str> = Vec::new();
    crate::store::reconcile::for_each_observed_account(c, run, system, &groups, |a, held| {
        accounts += 1;
        let key = lower(a.login);
        if !touched_accounts.contains(key.as_ref()) {
            // Accounts: proven owners only.
            let owner = match correlate_at(&maps, &entry.correlate, a).0 {
                Match::Linked { person, by } if by.proves() => Some(person),
                _ => None,
            };
            upsert_account.execute(params![
                system,
                owner,
                a.login,
                a.external_id,
                a.active,
                observed_at
            ])?;
        }
        // Memberships in catalogued groups, with the person only where the account's
        // owner is proven.
        want.clear();
        want.extend(
            held.iter()
                .map(|&g| &groups[g as usize])
                .filter(|g| g.2)
                .map(|g| g.0.as_str()),
        );
        memberships += want.len();
        let existing: Vec<String> = existing_of
            .query_map(params![system, a.login], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        for ent in &existing {
            if !want.contains(&ent.as_str()) && !touched(&key, ent) {
                removed += drop_access.execute(params![system, a.login, ent])?;
            }
        }
        if !want.is_empty() {
            let person: Option<String> = owner_of
                .query_row(params![system, a.login], |r| r.get(0))
                .optional()?
                .flatten();
            for ent in &want {
                if !touched(&key, ent) {
                    added += upsert_access.execute(params![
                        system,
                        a.login,
                        person,
                        ent,
                        observed_at
                    ])?;
                }
            }
        }
        seen_logins.insert(key.into_owned());
        Ok(())
    })?;
    // Accounts the target no longer has (and no operation wrote since the read began),
    // and memberships recorded on logins the read did not see at all.
    // Both are picked out while reading (not collected whole first): a system of a
    // million memberships must not be held in memory twice.
    let gone: Vec<String> = {
        let mut st = c.prepare(
            "SELECT login FROM accounts WHERE system = ?1 AND NOT (source = 'recorded' AND observed_at >= ?2)",
        )?;
        let mut rows = st.query(params![system, read_started])?;
        let mut out = Vec::new();
        while let Some(r) = rows.next()? {
            let l = text(r, 0)?;
            if !seen_logins.contains(lower(l).as_ref()) {
                out.push(l.to_string());
            }
        }
        out
    };
    for login in &gone {
        c.prepare_cached("DELETE FROM observed_access WHERE system = ?1 AND account_login = ?2")?
            .execute(params![system, login])?;
        c.prepare_cached("DELETE FROM accounts WHERE system = ?1 AND login = ?2")?
            .execute(params![system, login])?;
    }
    let stray: Vec<(String, String)> = {
        let mut st =
            c.prepare("SELECT account_login, entitlement FROM observed_access WHERE system = ?1")?;
        let mut rows = st.query([system])?;
        let mut out = Vec::new();
        while let Some(r) = rows.next()? {
            let (l, e) = (text(r, 0)?, text(r, 1)?);
            let key = lower(l);
            if !seen_logins.contains(key.as_ref()) && !touched(&key, e) {
                out.push((l.to_string(), e.to_string()));
            }
        }
        out
    };
    for (login, ent) in &stray {
        removed += drop_access.execute(params![system, login, ent])?;
    }
    drop((
        upsert_account,
        owner_of,
        existing_of,
        drop_access,
        upsert_access,
    ));
    tx.audit(crate::store::NewAuditEvent {
        actor,
        action: "access.observed_in_full",
        subject: system,
        details: serde_json::json!({"accounts": accounts, "accounts_gone": gone.len(),
                                    "memberships": memberships, "memberships_gone": removed,
                                    "memberships_written": added, "observed_at": observed_at,
                                    "kept_from_operations_since": touched_access.len()}),
    })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::SystemsConfig;
    use std::path::Path;

    fn world() -> World {
        let mut w = World::new(Utc::now());
        for (id, given, email) in [
            ("E1", "Ann", "ann@x.io"),
            ("E2", "Bob", "bob@x.io"),
            ("E3", "Bob", "bob@x.io"),
            ("E4", "Cy", "cy@x.io"),
        ] {
            w.add_person(Person::new(id, given, "Smith", email));
        }
        w.link("okta", "ann@x.io", "E1");
        w.assign_login("okta", "cy.smith", "E4");
        w
    }

    fn acct_row(login: &str, email: Option<&str>, hris: Option<&str>) -> AccountRow<'static> {
        let a: &'static ObservedAccount = Box::leak(Box::new(acct(login, email, hris)));
        a.as_row()
    }

    fn acct(login: &str, email: Option<&str>, hris: Option<&str>) -> ObservedAccount {
        ObservedAccount {
            external_id: format!("id-{login}"),
            login: login.into(),
            email: email.map(str::to_string),
            active: true,
            hris_id: hris.map(str::to_string),
            attributes: std::collections::BTreeMap::new(),
            late: false,
        }
    }

    #[test]
    fn the_targets_own_hr_id_outranks_weaker_rules() {
        let w = world();
        let rules = Correlate::DEFAULT;
        // Linked to E1 but carrying E2's HR id: flagged, never guessed.
        let m = correlate(&w, "okta", &rules, &acct_row("ann@x.io", None, Some("E2")));
        assert!(matches!(m, Match::Ambiguous { .. }), "{m:?}");
        // An HR id nobody has: an orphan, although the e-mail names someone.
        let m = correlate(
            &w,
            "okta",
            &rules,
            &acct_row("z", Some("cy@x.io"), Some("E9")),
        );
        assert!(matches!(m, Match::Orphan { .. }), "{m:?}");
        // The HR id proves it.
        let m = correlate(&w, "okta", &rules, &acct_row("whatever", None, Some("E4")));
        assert_eq!(
            m,
            Match::Linked {
                person: "E4",
                by: Correlate::HrisId
            }
        );
    }

    #[test]
    fn weak_matches_are_reported_as_weak_and_homonyms_are_ambiguous() {
        let w = world();
        let rules = Correlate::DEFAULT;
        // Two people share bob@x.io: ambiguous.
        let m = correlate(
            &w,
            "okta",
            &rules,
            &acct_row("bob@x.io", Some("bob@x.io"), None),
        );
        assert!(
            matches!(&m, Match::Ambiguous { candidates, .. } if candidates.len() == 2),
            "{m:?}"
        );
        // By e-mail: linked, but not proof.
        let m = correlate(
            &w,
            "okta",
            &rules,
            &acct_row("cy@x.io", Some("cy@x.io"), None),
        );
        assert!(
            matches!(
                m,
                Match::Linked {
                    by: Correlate::Email,
                    ..
                }
            ),
            "{m:?}"
        );
        assert!(!Correlate::Email.proves() && !Correlate::Login.proves());
        // By the assigned login, case-insensitively.
        let m = correlate(&w, "okta", &rules, &acct_row("Cy.Smith", None, None));
        assert_eq!(
            m,
            Match::Linked {
                person: "E4",
                by: Correlate::Login
            }
        );
        // A system that only trusts HR ids leaves the same account an orphan.
        let m = correlate(
            &w,
            "okta",
            &[Correlate::HrisId],
            &acct_row("cy@x.io", Some("cy@x.io"), None),
        );
        assert!(matches!(m, Match::Orphan { .. }), "{m:?}");
    }

    fn entry() -> SystemEntry {
        let cfg = SystemsConfig::parse(
            Path::new("s.toml"),
            "[systems.okta]\nkind = \"okta\"\n[[systems.okta.entitlements]]\nkind = \"group\"\nname = \"eng\"\n[[systems.okta.entitlements]]\nkind = \"group\"\nname = \"admins\"\nrisk = \"privileged\"\n",
        )
        .unwrap();
        cfg.catalog.systems["okta"].clone()
    }

    fn obs(status: &str, phase: &str, ent_index: i64) -> SystemObservation {
        SystemObservation {
            read: Checkpoint {
                system: "okta".into(),
                status: status.into(),
                phase: phase.into(),
                ent_index,
                cursor: None,
                accounts: 1,
                memberships: 1,
                pages: 1,
                all_groups: true,
                started_at: String::new(),
                observed_at: None,
                error: None,
            },
            accounts: vec![
                acct("ann@x.io", Some("ann@x.io"), Some("E1")),
                acct("nobody@x.io", None, None),
            ],
            groups: vec![
                ("okta:group:admins".into(), "g1".into(), true),
                ("okta:group:eng".into(), "g2".into(), true),
            ],
            members: vec![("okta:group:admins".into(), "id-ann@x.io".into())],
        }
    }

    #[test]
    fn an_incomplete_read_concludes_nothing_about_what_it_did_not_read() {
        let mut w = world();
        w.intend("E1", "okta:group:eng");
        let e = entry();
        let classes = |o: &SystemObservation| {
            classify(&w, &e, o)
                .into_iter()
                .map(|f| (f.class, f.entitlement))
                .collect::<Vec<_>>()
        };
        // Complete: excess admins (privileged), missing eng, one orphan.
        let all = classes(&obs("complete", "done", 2));
        assert!(
            all.contains(&("excess", Some("okta:group:admins".into()))),
            "{all:?}"
        );
        assert!(
            all.contains(&("missing", Some("okta:group:eng".into()))),
            "{all:?}"
        );
        assert!(all.contains(&("orphan", None)), "{all:?}");
        // Stopped while reading eng's members: admins was read (excess stands), eng was
        // not (no missing).
        let part = classes(&obs("incomplete", "members", 1));
        assert!(
            part.contains(&("excess", Some("okta:group:admins".into()))),
            "{part:?}"
        );
        assert!(!part.iter().any(|f| f.0 == "missing"), "{part:?}");
        // Stopped in the account listing: nothing at all.
        assert!(classes(&obs("incomplete", "accounts", 0)).is_empty());
        // An account that appeared during the read is left for the next one.
        let mut late = obs("complete", "done", 2);
        late.accounts[1].late = true;
        assert!(!classes(&late).iter().any(|f| f.0 == "orphan"));
    }

    #[test]
    fn attributes_compare_as_the_adapter_writes_them() {
        let mut p = Person::new("E1", "Ann", "Smith", "ann@x.io");
        p.department = "R&D".into();
        let mut a = acct("ann", None, Some("E1"));
        a.attributes.insert("department".into(), "RD".into());
        let iam = SystemsConfig::parse(Path::new("s.toml"), "[systems.aws]\nkind = \"aws_iam\"\n")
            .unwrap();
        let okta =
            SystemsConfig::parse(Path::new("s.toml"), "[systems.okta]\nkind = \"okta\"\n").unwrap();
        // IAM cannot hold "&": "RD" is what was written, not drift.
        let mut w = World::new(Utc::now());
        w.add_person(p);
        assert!(attribute_drift(&w, 0, &iam.catalog.systems["aws"], &a.as_row()).is_empty());
        // Okta can: "RD" there is drift.
        let d = attribute_drift(&w, 0, &okta.catalog.systems["okta"], &a.as_row());
        assert_eq!(d, vec!["department: target \"RD\", HR \"R&D\"".to_string()]);
        // Only what the target reported is compared.
        a.attributes.clear();
        assert!(attribute_drift(&w, 0, &okta.catalog.systems["okta"], &a.as_row()).is_empty());
    }

    #[test]
    fn work_already_in_flight_is_not_drift() {
        let mut w = world();
        w.intend("E1", "okta:group:eng");
        let e = entry();
        let o = obs("complete", "done", 2);
        let classes = |w: &World| {
            classify(w, &e, &o)
                .into_iter()
                .map(|f| f.class)
                .collect::<Vec<_>>()
        };
        assert!(classes(&w).contains(&"missing") && classes(&w).contains(&"excess"));
        w.in_flight("E1", "okta", Some("okta:group:eng"));
        w.in_flight("E1", "okta", Some("okta:group:admins"));
        assert!(!classes(&w).contains(&"missing") && !classes(&w).contains(&"excess"));
    }

    #[test]
    fn intended_grants_added_in_any_order_stay_each_persons_own() {
        let mut w = world();
        for (p, e) in [
            ("E1", "okta:group:a"),
            ("E2", "okta:group:b"),
            ("E1", "okta:group:c"),
            ("E4", "okta:group:a"),
            ("E2", "okta:group:d"),
            ("E9", "okta:group:z"), // nobody in HR: ignored
        ] {
            w.intend(p, e);
        }
        let names = |w: &World, id: &str| -> Vec<String> {
            let i = w.index_of(id).unwrap();
            w.intended(i)
                .iter()
                .map(|&e| w.ents[e as usize].clone())
                .collect()
        };
        assert_eq!(names(&w, "E1"), ["okta:group:a", "okta:group:c"]);
        assert_eq!(names(&w, "E2"), ["okta:group:b", "okta:group:d"]);
        assert_eq!(names(&w, "E3"), Vec::<String>::new());
        assert_eq!(names(&w, "E4"), ["okta:group:a"]);
    }

    #[test]
    fn leavers_come_first_and_get_no_other_findings() {
        let mut w = world();
        let mut ann = Person::new("E1", "Ann", "Smith", "ann@x.io");
        ann.status = crate::model::EmploymentStatus::Terminated;
        w.add_person(ann);
        w.intend("E1", "okta:group:eng");
        let f = classify(&w, &entry(), &obs("complete", "done", 2));
        let ann: Vec<_> = f
            .iter()
            .filter(|f| f.person.as_deref() == Some("E1"))
            .collect();
        assert_eq!(ann.len(), 1, "{f:#?}");
        assert_eq!(ann[0].class, "leaver_with_access");
        assert_eq!(ann[0].severity, "critical");
        assert!(f.iter().all(|x| x.rank >= ann[0].rank));
    }
}
